"""Stand-in for https://files.fast.ai, serving the course's rossmann.tgz from 127.0.0.1.

lessonkit fetches https://files.fast.ai/part2/lesson14/rossmann.tgz with urllib over HTTPS only. To send exactly that
request to this machine, this server is an HTTP proxy (set `https_proxy`, which urllib honours): it answers CONNECT
files.fast.ai:443, then speaks TLS with a certificate for files.fast.ai signed by a certificate authority made here,
which the process trusts through SSL_CERT_FILE. lessonkit's code is the same as on a student's machine; only the
network under it is local. Needs the `openssl` command. Faults: `set_fault('404' | 'cut' | None)`.
"""
from __future__ import annotations
import os, ssl, socket, subprocess, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST, TGZ_PATH = 'files.fast.ai', '/part2/lesson14/rossmann.tgz'

def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    "A CA (ca.pem) and a certificate for files.fast.ai signed by it; returns (ca, cert, key)."
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    ca, cert, key = folder/'ca.pem', folder/'files.fast.ai.pem', folder/'files.fast.ai.key'
    if cert.is_file(): return ca, cert, key
    run = lambda *a: subprocess.run(['openssl', *a], check=True, capture_output=True, cwd=folder)
    run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '30',
        '-subj', '/CN=lessonkit stand-in CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign')
    run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key.name, '-out', 'leaf.csr', '-subj', f'/CN={HOST}')
    (folder/'leaf.ext').write_text(f'subjectAltName=DNS:{HOST}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
    run('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', cert.name,
        '-days', '30', '-extfile', 'leaf.ext')
    return ca, cert, key

class _Files(BaseHTTPRequestHandler):
    "The requests that arrive inside the TLS tunnel."
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def do_GET(self):
        srv = self.server; srv.requests.append(self.path)
        if self.path != TGZ_PATH or srv.fault == '404':
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers(); return
        data = srv.payload
        self.send_response(200); self.send_header('Content-Type', 'application/x-gtar-compressed')
        self.send_header('Content-Length', str(len(data))); self.end_headers()
        if srv.fault == 'cut':
            srv.fault = None
            self.wfile.write(data[:len(data)//2]); self.wfile.flush(); self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR); return
        self.wfile.write(data)

class _Proxy(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def do_CONNECT(self):
        if self.path.split(':')[0] != HOST:
            self.send_response(502); self.send_header('Content-Length', '0'); self.end_headers(); return
        self.send_response(200, 'Connection established'); self.end_headers()
        try:
            tls = self.server.tls.wrap_socket(self.connection, server_side=True)
            _Files(tls, self.client_address, self.server)
        except (ssl.SSLError, OSError): pass
        self.close_connection = True

class FilesFastAi:
    "Start with `FilesFastAi(folder, payload).start()`; `env()` is what a process needs to reach it; `stop()` ends it."
    def __init__(self, folder: Path, payload: bytes):
        self.ca, cert, key = make_certs(folder)
        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), _Proxy)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); ctx.load_cert_chain(cert, key)
        self.httpd.tls, self.httpd.payload, self.httpd.fault, self.httpd.requests = ctx, payload, None, []
    @property
    def requests(self) -> list: return self.httpd.requests
    def set_fault(self, fault: str | None): self.httpd.fault = fault
    def start(self) -> 'FilesFastAi':
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start(); return self
    def env(self) -> dict:
        p = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        return {'https_proxy': p, 'HTTPS_PROXY': p, 'SSL_CERT_FILE': str(self.ca), 'no_proxy': '', 'NO_PROXY': ''}
    def stop(self): self.httpd.shutdown(); self.httpd.server_close()
