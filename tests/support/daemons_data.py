"""Private LDAP, MySQL, PostgreSQL and RADIUS daemons for the check tests.

slapd, mariadbd, postgres and freeradius, each initialised in its own directory and started on
free loopback ports (IPv4 and IPv6); the check tests' conftest wraps them in session-scoped
fixtures.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TypeVar

from checks.types import SqlSpec
from tests.support.servers import (
    Daemon,
    free_port,
    need,
    need_root,
    private_dir,
    unavailable,
    write_cert,
)

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
Sql = TypeVar("Sql", bound=SqlSpec)


def sql_spec(kind: type[Sql], query: str = "SELECT id FROM alive", **changes: str) -> Sql:
    """A ``kind`` check logging in to the test database, with ``changes`` to its fields."""
    fields = {"login": SQL_USER, "passwd": SQL_PASSWORD, "database": SQL_DB, "query": query}
    fields.update(changes)
    return kind(**fields)


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
    # The port opens before recovery ends ("the database system is starting up").
    ready = need("/usr/lib/postgresql/*/bin/pg_isready")
    probe_argv = [ready, "-q", "-h", str(d.directory), "-p", str(d.ports["pgsql"])]
    end = time.monotonic() + 30
    while subprocess.run(probe_argv, user="postgres", check=False).returncode != 0:
        if time.monotonic() > end:
            d.fail("did not become ready")
        time.sleep(0.05)
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
    d.fail("did not start")
