"""Certificates for ``test+tls://`` and ``qemu+tls://``: a CA, a server's and clients', made
with ``certtool`` (package gnutls-bin) in a dir of their own.

The layout is libvirt's. :attr:`Pki.server` holds ``cacert.pem``, ``servercert.pem`` and
``serverkey.pem`` (what ``Libvirtd(tls=...)`` reads); each :meth:`Pki.client` dir holds
``cacert.pem``, ``clientcert.pem`` and ``clientkey.pem``, and is what a client names with
``?pkipath=DIR``. The server's certificate is for ``localhost`` and ``127.0.0.1``; each
certificate lasts two days, unless made expired.

It changes nothing outside its dir; without certtool, :meth:`Pki.make` says in one line what
is missing and that ``scripts/prepare-host --tls`` in ipyvirt's source tree installs it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ipyvirt.testing.host import PREPARE, tls_needs

__all__ = ["Pki", "PkiUnavailable"]

# the validity of an expired certificate: long past, and over
EXPIRED = 'activation_date = "2020-01-01 00:00:00"\nexpiration_date = "2020-01-02 00:00:00"\n'
VALID = "expiration_days = 2\n"


class PkiUnavailable(RuntimeError):
    pass


class Pki:
    """A CA of our own, a server certificate for 127.0.0.1 and client certificates.

    Without *dir* a temporary one is made, and :meth:`cleanup` removes it.
    """

    def __init__(self, dir: str | Path | None = None, name: str = "ipyvirt test CA") -> None:
        if dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="ipyvirt-pki-"))
            self._owns_dir = True
        else:
            self.dir = Path(dir).absolute()
            self._owns_dir = not self.dir.exists()
            self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_key = self.dir / "cakey.pem"
        self.ca_cert = self.dir / "cacert.pem"
        #: the server's dir: ``Libvirtd(tls=pki.server)``
        self.server = self.dir / "server"

    def make(self) -> Pki:
        """The CA and the server's certificate (made once; later calls keep them)."""
        if not shutil.which("certtool"):
            raise PkiUnavailable(
                f"Pki needs packages {' '.join(tls_needs())}: {PREPARE} --tls in ipyvirt's "
                "source tree installs it (run it as root)"
            )
        self.dir.chmod(0o700)
        if not self.ca_cert.exists():
            self._key(self.ca_key)
            template = f'cn = "{self.name}"\nca\ncert_signing_key\n{VALID}'
            self._certtool("--generate-self-signed", self.ca_key, self.ca_cert, template)
        if not (self.server / "servercert.pem").exists():
            self.server.mkdir(mode=0o700, exist_ok=True)
            shutil.copy(self.ca_cert, self.server / "cacert.pem")
            template = (
                'organization = "ipyvirt tests"\ncn = "localhost"\ndns_name = "localhost"\n'
                f'ip_address = "127.0.0.1"\ntls_www_server\nencryption_key\nsigning_key\n{VALID}'
            )
            self._signed(self.server / "serverkey.pem", self.server / "servercert.pem", template)
        return self

    def client(
        self, name: str = "client", *, expired: bool = False, trust: Pki | None = None
    ) -> Path:
        """A client's ``pkipath`` dir: a certificate this CA signs for *name* (*expired*: one
        whose validity ended in 2020), and the CA it trusts (*trust*'s, default this one)."""
        self.make()
        where = self.dir / name
        where.mkdir(mode=0o700, exist_ok=True)
        template = (
            f'organization = "ipyvirt tests"\ncn = "{name}"\ntls_www_client\n'
            f"encryption_key\nsigning_key\n{EXPIRED if expired else VALID}"
        )
        self._signed(where / "clientkey.pem", where / "clientcert.pem", template)
        trusted = (trust or self).make().ca_cert
        shutil.copy(trusted, where / "cacert.pem")
        return where

    def _signed(self, key: Path, cert: Path, template: str) -> None:
        self._key(key)
        extra = ("--load-ca-certificate", str(self.ca_cert), "--load-ca-privkey", str(self.ca_key))
        self._certtool("--generate-certificate", key, cert, template, extra)

    def _key(self, key: Path) -> None:
        # RSA: libvirt wants "key encipherment" in a certificate's key usage, which an ECDSA
        # key cannot have (certtool drops it); 2048 bits, made in a fraction of a second
        command = ["certtool", "--generate-privkey", "--key-type", "rsa", "--bits", "2048"]
        self._run([*command, "--outfile", str(key)])
        key.chmod(0o600)

    def _certtool(
        self, action: str, key: Path, cert: Path, template: str, extra: tuple[str, ...] = ()
    ) -> None:
        info = cert.with_suffix(".info")
        info.write_text(template)
        command = ["certtool", action, "--load-privkey", str(key), *extra]
        self._run([*command, "--template", str(info), "--outfile", str(cert)])
        info.unlink()

    @staticmethod
    def _run(command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            why = (done.stderr.strip() or "no output").splitlines()[-1]
            raise PkiUnavailable(f"{' '.join(command[:2])} failed ({why})")

    def cleanup(self) -> None:
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
