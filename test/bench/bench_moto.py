"""
The benchmark's moto, never the tests': the tests' strict moto (test/helpers/strict_moto.py), with the HTTP work
around each request done once where stock moto_server does it again for every request. What moto does with a
request (DynamoDB's one lock, its conditions and transactions, Identity Center's and the Identity Store's rules) is
the tests' strict moto's own code, untouched.

1. Its dispatcher remembers which of moto's services answers a service host (the one moto infers from the request's
   signature or X-Amz-Target: every request's Host header here is 127.0.0.1). Stock moto_server finds it by listing the
   directory of moto's package and checking each of its 170-odd entries with a stat(), then by trying the 178 URL
   patterns of its services one by one, under one lock that every request of every service takes: 0.2 ms of a
   DynamoDB call and 0.5 ms of an Identity Center, Identity Store or SNS call on an idle machine, and under the POST
   load every request queued for that lock behind the file system. The answer depends on the host name alone (the
   package's directory and the patterns do not change while the server runs).
3. Its listening queue holds 128 connections, as Werkzeug's does (the standard library's server holds 5): the
   POSTs arrive in bursts of 20, and a connection past the queue waits a second for its handshake's retry.
2. Connections are kept alive, as AWS's endpoints keep them. moto_server's server (Werkzeug's development server)
   answers every request with `Connection: close`, so each AWS call opened a TCP connection and started a Python
   thread for it: under the POST load, connecting was 15 % of the busy time of the Node process that runs the
   service. Here one thread serves one connection for as long as the client keeps it, one request after another,
   each request's body read whole (by its Content-Length or its chunks) before the next is read.

Usage: python3 bench_moto.py [-H host] [-p port]
"""
import argparse
import io
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_to_bytes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers"))

import strict_moto  # noqa: E402,F401  (its changes to moto; its main runs only as a script)
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402

_stock_backend_for_host = DomainDispatcherApplication.get_backend_for_host
_backends = {}


def _remembered_backend_for_host(self, host):
    # Called under the dispatcher's own lock, so two requests never race to fill the same entry.
    if host not in _backends:
        _backends[host] = _stock_backend_for_host(self, host)
    return _backends[host]


DomainDispatcherApplication.get_backend_for_host = _remembered_backend_for_host


class _ListeningServer(ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


class _KeptAliveHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "amazon.com"
    sys_version = ""
    # The headers and the body leave in two writes: with Nagle's algorithm the body would wait for the client's
    # delayed acknowledgement of the headers, 40 ms a request.
    disable_nagle_algorithm = True
    app = None

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("a negative Content-Length")
        return self.rfile.read(length)

    def _serve(self):
        body = self._body()
        path, _, query = self.path.partition("?")
        environ = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "REQUEST_URI": self.path,
            "RAW_URI": self.path,
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1],
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            key = key if key == "CONTENT_TYPE" else "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        started = []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]

        try:
            result = self.app(environ, start_response)
            try:
                payload = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        except Exception as error:
            # Answered as Werkzeug answers it, never a dropped connection, which the client could not tell apart
            # from a fault the proxy injects; the connection closes, so nothing behind it is misread.
            print("bench_moto: %s: %s" % (type(error).__name__, error), file=sys.stderr)
            self.close_connection = True
            started[:] = ["500 Internal Server Error", [("Content-Type", "text/plain"), ("Connection", "close")]]
            payload = b"Internal Server Error"
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        own_length = None
        for name, value in headers:
            if name.lower() == "content-length":
                own_length = value
            elif name.lower() not in ("transfer-encoding", "connection", "server"):
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # A HEAD answer carries the length its GET would have; 1xx, 204 and 304 answers carry none.
        if self.command == "HEAD":
            self.send_header("Content-Length", own_length or "0")
        elif not (int(code) < 200 or int(code) in (204, 304)):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # Where moto's own answers say it listens (as moto_server sets it).
    os.environ.setdefault("MOTO_PORT", str(args.port))
    _KeptAliveHandler.app = DomainDispatcherApplication(create_backend_app)
    _ListeningServer((args.host, args.port), _KeptAliveHandler).serve_forever()
