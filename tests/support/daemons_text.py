"""Private FTP, SMTP, POP3/IMAP and NNTP daemons for the check tests.

vsftpd, aiosmtpd (as its own process), dovecot and JamNNTPd, each started on free loopback ports
with its config in its own directory; the check tests' conftest wraps them in session-scoped
fixtures.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.support import REPO
from tests.support.servers import (
    Daemon,
    free_port,
    need,
    need_root,
    private_dir,
    unavailable,
    write_cert,
)

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
    port = free_port()
    low = free_port()
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
delay_failed_login=0
"""
    )
    conf.chmod(0o600)
    d.start([binary, str(conf)])
    d.wait_tcp(port, host=host)
    return d


def start_aiosmtpd(handler: str = "aiosmtpd.handlers.Sink") -> Daemon:
    """aiosmtpd, a real SMTP server, as its own process; ``handler`` may refuse every client.

    ``handler`` is a dotted name the daemon imports, with the repository on its path (as
    ``tests.support.daemons_text.RefuseEveryone``).
    """
    d = Daemon("aiosmtpd", private_dir("aiosmtpd"))
    port = free_port()
    d.ports = {"smtp": port}
    d.start(
        [
            "env",
            f"PYTHONPATH={REPO}",
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
