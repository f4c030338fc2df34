"""moto's S3 server over TLS that ends each connection with a TLS close_notify.

Run as ``python moto_tls.py PORT CERT KEY`` (the test bed's throwaway self-signed certificate).
``moto_server --ssl`` (werkzeug's development server) ends a ``Connection: close`` response by
shutting the TCP socket down without a TLS close_notify; pgBackRest reads such a response's
content until the end of the stream, and its OpenSSL 3 reports the bare TCP end as
"TLS error [1:167772454] unexpected eof while reading", so stanza-create's first PUT fails
(real S3 ends its TLS sessions properly). This server is moto's own application under werkzeug's
threaded server; the only change is the close_notify before the socket is shut down.
"""

import socket
import ssl
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug import serving


def _shutdown_request(self, request):
    if isinstance(request, ssl.SSLSocket):
        try:
            request.settimeout(10)
            request.unwrap()  # close_notify, then the peer's (or its end of the stream)
        except (OSError, ValueError):
            pass
    try:
        request.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    self.close_request(request)


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    serving.ThreadedWSGIServer.shutdown_request = _shutdown_request
    app = DomainDispatcherApplication(create_backend_app)
    server = serving.make_server("127.0.0.1", port, app, threaded=True, ssl_context=context)
    print("moto over TLS on https://127.0.0.1:%d" % port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
