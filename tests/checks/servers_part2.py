"""Real daemons from Debian for the part-2 check tests, each a private instance on loopback.

Every launcher builds its own config and data directory under one temporary directory, starts
the daemon in the foreground on free loopback ports, waits until it answers and hands back a
handle; ``stop()`` ends it. A missing daemon skips the tests that need it, except under
``CI=true``, where it fails them: CI must prove every check against its server.

The test modules wrap these launchers in session-scoped fixtures, one module per daemon, so that
each daemon starts once per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import pytest
import trustme

import checks
from checks.types import CheckSpec, Result, Target

ROOT = Path(__file__).resolve().parents[2]


def need(*candidates: str) -> str:
    """The first existing executable among ``candidates`` (a glob is allowed), else skip/fail."""
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)) if "*" in pattern else [pattern]:
            found = shutil.which(path)
            if found:
                return found
    unavailable(f"{candidates[0]} is not installed (see tests/deps/checks2.apt)")
    raise AssertionError("unreachable")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail under CI where no daemon test may skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"{what} needs root to start")


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def private_dir(name: str) -> Path:
    """A fresh directory under /tmp that unprivileged daemon users can traverse."""
    path = Path(tempfile.mkdtemp(prefix=f"ldirector-{name}-"))
    path.chmod(0o755)
    return path


def write_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed-CA certificate for 127.0.0.1 and its key, as PEM files."""
    cert = trustme.CA().issue_cert("127.0.0.1", "::1", "localhost")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o644)
    return cert_path, key_path


@dataclass
class Daemon:
    """One running daemon and the directory it lives in."""

    name: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    log: Path | None = None

    def start(self, argv: Sequence[str], *, user: str | None = None) -> None:
        self.log = self.directory / f"{self.name}.out"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                user=user,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        texts = []
        for path in [self.log, *self.directory.glob("*.log")]:
            if path is not None and path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)

    def wait_tcp(self, port: int, deadline: float = 30.0, host: str = "127.0.0.1") -> None:
        """Wait until ``host:port`` accepts a connection, or fail with the daemon's log."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process is not None and self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"{self.name} did not start on port {port}:\n{self.log_tail()}", pytrace=False)

    def run(self, argv: Sequence[str], *, user: str | None = None, stdin: bytes = b"") -> None:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, cwd=self.directory, user=user, check=False
        )
        if done.returncode != 0:
            self.stop()
            out = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            pytest.fail(f"{self.name}: {argv[0]} exited {done.returncode}:\n{out}", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()


# --- silent peers: the refused / hung cases ---------------------------------------------------


@contextlib.contextmanager
def hung_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose kernel completes the handshake but whose owner never reads or writes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        s.listen(64)
        yield s.getsockname()[1]


@contextlib.contextmanager
def refused_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A port held by a socket that never listens, so connecting to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


@contextlib.contextmanager
def hung_udp(host: str = "127.0.0.1") -> Iterator[int]:
    """A UDP port that receives datagrams and never answers them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


# --- the daemons --------------------------------------------------------------------------------

FTP_FILE = "Hello from vsftpd: ldirector check page\n"


def start_vsftpd(host: str = "127.0.0.1") -> Daemon:
    """vsftpd on ``host`` with anonymous login, a file to fetch, and PAM logins that fail.

    vsftpd listens on one address family per instance, hence one instance per host.
    """
    binary = need("/usr/sbin/vsftpd")
    need_root("vsftpd")
    d = Daemon("vsftpd", private_dir("vsftpd"))
    anon = d.directory / "anon"
    empty = d.directory / "empty"
    anon.mkdir(mode=0o755)
    empty.mkdir(mode=0o755)
    (anon / "index.html").write_text(FTP_FILE)
    (anon / "index.html").chmod(0o644)
    port = free_port(host=host)
    low = free_port(host=host)
    d.ports = {"ftp": port}
    v6 = ":" in host
    conf = d.directory / "vsftpd.conf"
    conf.write_text(
        f"""listen={"NO" if v6 else "YES"}
listen_ipv6={"YES" if v6 else "NO"}
listen_address{"6" if v6 else ""}={host}
listen_port={port}
background=NO
anonymous_enable=YES
no_anon_password=NO
anon_root={anon}
local_enable=YES
write_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port={low}
pasv_max_port={low}
port_enable=NO
secure_chroot_dir={empty}
pam_service_name=vsftpd
seccomp_sandbox=NO
xferlog_enable=NO
vsftpd_log_file={d.directory}/vsftpd.log
dual_log_enable=NO
syslog_enable=NO
ftpd_banner=ldirector test FTP
"""
    )
    conf.chmod(0o600)
    d.start([binary, str(conf)])
    d.wait_tcp(port, host=host)
    return d


def start_aiosmtpd(handler: str = "aiosmtpd.handlers.Sink") -> Daemon:
    """aiosmtpd, a real SMTP server, as its own process; ``handler`` may refuse every client."""
    d = Daemon("aiosmtpd", private_dir("aiosmtpd"))
    port = free_port()
    d.ports = {"smtp": port}
    env_path = f"{ROOT / 'tests' / 'checks'}"
    d.start(
        [
            "env",
            f"PYTHONPATH={env_path}",
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            handler,
        ]
    )
    d.wait_tcp(port)
    return d


class RefuseEveryone:
    """An aiosmtpd handler for a server that greets and then refuses EHLO and HELO."""

    refusal = "550 5.7.1 Client host rejected: not on the list"

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        return [self.refusal]

    async def handle_HELO(
        self, server: object, session: object, envelope: object, hostname: str
    ) -> str:
        return self.refusal


MAIL_USER, MAIL_PASSWORD = "alice", "wonderland"


def start_dovecot() -> Daemon:
    """dovecot serving pop3, pop3s, imap and imaps, with users from a passwd-file."""
    binary = need("/usr/sbin/dovecot")
    need_root("dovecot")
    if not Path("/usr/lib/dovecot/pop3").exists() or not Path("/usr/lib/dovecot/imap").exists():
        unavailable(
            "dovecot-pop3d and dovecot-imapd are not installed (see tests/deps/checks2.apt)"
        )
    d = Daemon("dovecot", private_dir("dovecot"))
    cert, key = write_cert(d.directory)
    d.ports = {name: free_port() for name in ("pop3", "pop3s", "imap", "imaps")}
    mail = d.directory / "mail"
    mail.mkdir(mode=0o777)
    mail.chmod(0o777)
    passwd = d.directory / "passwd"
    passwd.write_text(f"{MAIL_USER}:{{PLAIN}}{MAIL_PASSWORD}::::::\n")
    passwd.chmod(0o644)
    conf = d.directory / "dovecot.conf"
    conf.write_text(
        f"""base_dir = {d.directory}/run
state_dir = {d.directory}/state
log_path = {d.directory}/dovecot.log
instance_name = ldirector-test-{d.ports["imap"]}
protocols = pop3 imap
listen = 127.0.0.1, ::1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{mail}/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%u
}}
first_valid_uid = 1
service imap-login {{
  inet_listener imap {{
    port = {d.ports["imap"]}
  }}
  inet_listener imaps {{
    port = {d.ports["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {d.ports["pop3"]}
  }}
  inet_listener pop3s {{
    port = {d.ports["pop3s"]}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No growing delay for the failed logins the tests make on purpose.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
auth_failure_delay = 0
"""
    )
    d.start([binary, "-F", "-c", str(conf)])
    for port in d.ports.values():
        d.wait_tcp(port)
    return d


def start_jamnntpd(allowed: str = "127.0.0.1") -> Daemon:
    """JamNNTPd accepting readers from ``allowed``; clients from elsewhere get a 5xx greeting."""
    binary = need("/usr/sbin/jamnntpd")
    d = Daemon("jamnntpd", private_dir("jamnntpd"))
    port = free_port()
    d.ports = {"nntp": port}
    for name, text in {
        "groups": f"local.test A 2:1/1.0 {d.directory}/local.test\n",
        "allow": f"{allowed} * -\n",
        "users": "",
    }.items():
        (d.directory / f"jamnntpd.{name}").write_text(text)
    d.start(
        [
            binary,
            "-p",
            str(port),
            "-m",
            "20",
            "-g",
            str(d.directory / "jamnntpd.groups"),
            "-a",
            str(d.directory / "jamnntpd.allow"),
            "-u",
            str(d.directory / "jamnntpd.users"),
            "-x",
            "/etc/jamnntpd.xlat",
            "-l",
            str(d.directory / "jamnntpd.log"),
            "-noecholog",
        ]
    )
    d.wait_tcp(port)
    return d


LDAP_SUFFIX = "dc=example,dc=test"
LDAP_ROOT_DN, LDAP_ROOT_PASSWORD = f"cn=admin,{LDAP_SUFFIX}", "s3cret"


def start_slapd() -> Daemon:
    """slapd with an mdb database seeded by slapadd, on ldap:// and ldaps:// loopback URLs."""
    binary = need("/usr/sbin/slapd")
    slapadd = need("/usr/sbin/slapadd")
    d = Daemon("slapd", private_dir("slapd"))
    cert, key = write_cert(d.directory)
    d.ports = {"ldap": free_port(), "ldaps": free_port()}
    db = d.directory / "db"
    db.mkdir()
    conf = d.directory / "slapd.conf"
    conf.write_text(
        f"""include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile {d.directory}/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
database mdb
maxsize 16777216
suffix "{LDAP_SUFFIX}"
rootdn "{LDAP_ROOT_DN}"
rootpw {LDAP_ROOT_PASSWORD}
directory {db}
# Anonymous readers may find ou=hidden but not match its objectClass: a search that succeeds
# with no entry, as a real directory with tightened ACLs answers.
access to dn.base="ou=hidden,{LDAP_SUFFIX}" attrs=objectClass
    by anonymous none
    by * read
access to * by * read
"""
    )
    ldif = f"""dn: {LDAP_SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{LDAP_SUFFIX}
objectClass: organizationalUnit
ou: people

dn: ou=hidden,{LDAP_SUFFIX}
objectClass: organizationalUnit
ou: hidden

dn: uid=alice,ou=people,{LDAP_SUFFIX}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: wonderland
"""
    d.run([slapadd, "-f", str(conf)], stdin=ldif.encode())
    urls = " ".join(
        f"{scheme}://{host}:{d.ports[scheme]}/"
        for scheme in ("ldap", "ldaps")
        for host in ("127.0.0.1", "[::1]")
    )
    d.start([binary, "-d", "0", "-h", urls, "-f", str(conf)])
    for port in d.ports.values():
        d.wait_tcp(port)
    return d


SQL_USER, SQL_PASSWORD, SQL_DB = "checker", "Pa55word", "health"


def start_mariadb() -> Daemon:
    """mariadbd on a fresh datadir, with a user, a database, a table with rows and an empty one."""
    binary = need("/usr/sbin/mariadbd")
    install = need("/usr/bin/mariadb-install-db")
    client = need("/usr/bin/mariadb")
    need_root("mariadbd")
    d = Daemon("mariadb", private_dir("mariadb"))
    data = d.directory / "data"
    sock = d.directory / "mysqld.sock"
    d.ports = {"mysql": free_port()}
    d.run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
    )
    d.start(
        [
            binary,
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={d.ports['mysql']}",
            "--bind-address=127.0.0.1,::1",
            "--user=root",
            f"--pid-file={d.directory}/mysqld.pid",
            f"--log-error={d.directory}/mysqld.log",
            "--skip-name-resolve",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=16M",
            "--performance-schema=OFF",
        ]
    )
    d.wait_tcp(d.ports["mysql"], deadline=60)
    sql = f"""CREATE DATABASE {SQL_DB};
CREATE TABLE {SQL_DB}.alive (id INT PRIMARY KEY);
INSERT INTO {SQL_DB}.alive VALUES (1);
CREATE TABLE {SQL_DB}.empty (id INT PRIMARY KEY);
CREATE USER '{SQL_USER}'@'127.0.0.1' IDENTIFIED BY '{SQL_PASSWORD}';
GRANT SELECT ON {SQL_DB}.* TO '{SQL_USER}'@'127.0.0.1';
CREATE USER '{SQL_USER}'@'::1' IDENTIFIED BY '{SQL_PASSWORD}';
GRANT SELECT ON {SQL_DB}.* TO '{SQL_USER}'@'::1';
"""  # noqa: S608 - fixed test values
    d.run([client, "--no-defaults", f"--socket={sock}", "-uroot"], stdin=sql.encode())
    return d


def start_postgres() -> Daemon:
    """postgres as the ``postgres`` user on a fresh cluster, password logins over TCP."""
    initdb = need("/usr/lib/postgresql/*/bin/initdb")
    binary = need("/usr/lib/postgresql/*/bin/postgres")
    psql = need("/usr/lib/postgresql/*/bin/psql")
    need_root("postgres (started as the postgres user)")
    d = Daemon("postgres", private_dir("postgres"))
    shutil.chown(d.directory, "postgres", "postgres")
    data = d.directory / "data"
    d.ports = {"pgsql": free_port()}
    pwfile = d.directory / "pw"
    pwfile.write_text("superpw\n")
    shutil.chown(pwfile, "postgres", "postgres")
    d.run(
        [
            initdb,
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
            "--no-sync",
            "--no-instructions",
        ],
        user="postgres",
    )
    d.start(
        [
            binary,
            "-D",
            str(data),
            "-k",
            str(d.directory),
            "-p",
            str(d.ports["pgsql"]),
            "-c",
            "listen_addresses=127.0.0.1,::1",
            "-c",
            "fsync=off",
            "-c",
            f"log_directory={d.directory}",
            "-c",
            "logging_collector=off",
        ],
        user="postgres",
    )
    d.wait_tcp(d.ports["pgsql"])
    sql = f"""CREATE USER {SQL_USER} PASSWORD '{SQL_PASSWORD}';
CREATE DATABASE {SQL_DB} OWNER {SQL_USER};
\\connect {SQL_DB}
CREATE TABLE alive (id int PRIMARY KEY);
INSERT INTO alive VALUES (1);
CREATE TABLE empty (id int PRIMARY KEY);
GRANT SELECT ON alive, empty TO {SQL_USER};
"""  # noqa: S608 - fixed test values
    d.run(
        [
            psql,
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-h",
            str(d.directory),
            "-p",
            str(d.ports["pgsql"]),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ],
        user="postgres",
        stdin=sql.encode(),
    )
    return d


RADIUS_SECRET, RADIUS_USER, RADIUS_PASSWORD = "testing123", "alice", "wonderland"
RADIUS_LOCKED = "mallet"


def start_freeradius() -> Daemon:
    """freeradius with one client (127.0.0.1) and one user from a users file, on a free UDP port."""
    binary = need("/usr/sbin/freeradius")
    if not Path("/usr/share/freeradius/dictionary").exists():
        unavailable("freeradius dictionaries are missing (see tests/deps/checks2.apt)")
    d = Daemon("freeradius", private_dir("freeradius"))
    port = free_port(socket.SOCK_DGRAM)
    d.ports = {"radius": port}
    (d.directory / "users").write_text(
        f'{RADIUS_USER} Cleartext-Password := "{RADIUS_PASSWORD}"\n'
        '\tReply-Message := "Welcome, %{User-Name}"\n'
        f"{RADIUS_LOCKED} Auth-Type := Reject\n"
        '\tReply-Message := "Account locked"\n'
    )
    (d.directory / "dictionary").write_text("")
    (d.directory / "radiusd.conf").write_text(
        f"""prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = {d.directory}
sbindir = /usr/sbin
logdir = {d.directory}
raddbdir = {d.directory}
radacctdir = {d.directory}
name = freeradius
confdir = {d.directory}
modconfdir = {d.directory}
run_dir = {d.directory}
db_dir = {d.directory}
libdir = /usr/lib/freeradius
pidfile = {d.directory}/radiusd.pid
max_request_time = 5
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {{
  destination = files
  file = {d.directory}/radius.log
}}
security {{
  allow_core_dumps = no
  reject_delay = 0
  status_server = no
}}
client loopback {{
  ipaddr = 127.0.0.1
  secret = {RADIUS_SECRET}
}}
client loopback6 {{
  ipv6addr = ::1
  secret = {RADIUS_SECRET}
}}
modules {{
  pap {{
  }}
  files {{
    filename = {d.directory}/users
  }}
}}
server default {{
  listen {{
    type = auth
    ipaddr = 127.0.0.1
    port = {port}
  }}
  listen {{
    type = auth
    ipv6addr = ::1
    port = {port}
  }}
  authorize {{
    files
    pap
  }}
  authenticate {{
    Auth-Type PAP {{
      pap
    }}
  }}
}}
"""
    )
    d.start([binary, "-f", "-d", str(d.directory), "-n", "radiusd", "-l", "stdout"])
    _wait_radius(d)
    return d


def _wait_radius(d: Daemon) -> None:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if d.process is not None and d.process.poll() is not None:
            break
        if d.log is not None and "Ready to process requests" in d.log.read_text(errors="replace"):
            return
        time.sleep(0.05)
    d.stop()
    pytest.fail(f"freeradius did not start:\n{d.log_tail()}", pytrace=False)


# --- running checks the way the scheduler does ----------------------------------------------------


def target(port: int, host: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(host), port=port)


async def probe(where: Target, spec: CheckSpec, seconds: float = 10.0) -> Result:
    """``checks.run`` under the caller-owned timeout, as the scheduler calls it."""
    async with asyncio.timeout(seconds):
        return await checks.run(where, spec)


def open_fds() -> set[str]:
    return {name for name in os.listdir("/proc/self/fd")}


async def assert_times_out_cleanly(where: Target, spec: CheckSpec, seconds: float = 0.5) -> None:
    """The check must end at the caller's timeout and leave no socket, task or thread behind."""
    before_fds, before_threads = open_fds(), threading.active_count()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await probe(where, spec, seconds)
    assert time.monotonic() - started < seconds + 0.5
    await settle(before_fds)
    assert open_fds() <= before_fds, "the check leaked a file descriptor"
    assert asyncio.all_tasks() == {asyncio.current_task()}, "the check leaked a task"
    assert threading.active_count() <= before_threads, "the check leaked a thread"


@contextlib.asynccontextmanager
async def leak_free() -> AsyncIterator[None]:
    """Checks run inside must leave no file descriptor, task or thread behind."""
    before_fds, before_threads = open_fds(), threading.active_count()
    yield
    await settle(before_fds)
    assert open_fds() <= before_fds, "a check leaked a file descriptor"
    assert asyncio.all_tasks() == {asyncio.current_task()}, "a check leaked a task"
    assert threading.active_count() <= before_threads, "a check leaked a thread"


async def cancel_at_many_points(where: Target, spec: CheckSpec) -> None:
    """Cancel the check at growing delays, so cancellation lands at different steps of the
    exchange with a real server (connect, TLS handshake, login, query); nothing may leak."""
    async with leak_free():
        for delay in (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064):
            with contextlib.suppress(TimeoutError):
                await probe(where, spec, delay)


async def settle(before_fds: set[str], limit: float = 2.0) -> None:
    """Let closed transports finish closing (the loop closes sockets on its next iterations)."""
    end = time.monotonic() + limit
    while not open_fds() <= before_fds and time.monotonic() < end:  # noqa: ASYNC110 - polling /proc
        await asyncio.sleep(0.01)
