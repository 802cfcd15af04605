#!/usr/bin/python3
"""A small gRPC server over TLS, for testing the clients of scripts/:
grpc.health.v1 (open, as in Ferry) and server reflection (v1alpha, what
grpcurl falls back to and what reflection_client.py speaks; here behind a
bearer token, to show that clients send their metadata on reflection too).

usage: fake_tls_server.py <stub-dir> <cert> <key> <ca> <token> <log> [--require-client-cert]

Prints the port it listens on (127.0.0.1, a free port) as its first line.
A reflection call without `authorization: Bearer <token>` is refused
UNAUTHENTICATED, as Ferry's services refuse their own RPCs. Each call appends one JSON
line to <log>: the method, the authorization it carried and the peer
certificate's URI SAN (empty without a client certificate). With
--require-client-cert the TLS handshake demands a certificate from <ca>.
"""
import json
import sys
import threading
from concurrent import futures

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from ferry_health import health_pb2, health_pb2_grpc  # noqa: E402
from ferry_reflection import reflection_pb2, reflection_pb2_grpc  # noqa: E402

_, _, CERT, KEY, CA, TOKEN, LOG = sys.argv[:7]
REQUIRE_CLIENT_CERT = "--require-client-cert" in sys.argv[7:]
log_lock = threading.Lock()


def admit(context, method, open_to_all=False):
    """Logs the call; aborts it UNAUTHENTICATED without the right token."""
    md = dict(context.invocation_metadata())
    auth = context.auth_context()
    peer = [v.decode() for v in auth.get("x509_subject_alternative_name", []) if v.startswith(b"spiffe://")]
    with log_lock, open(LOG, "a") as f:
        f.write(json.dumps({"method": method, "authorization": md.get("authorization", ""),
                            "peer": peer[0] if peer else ""}) + "\n")
    if not open_to_all and md.get("authorization") != "Bearer " + TOKEN:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class Health(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        admit(context, "grpc.health.v1.Health/Check", open_to_all=True)
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class Reflection(reflection_pb2_grpc.ServerReflectionServicer):
    def ServerReflectionInfo(self, request_iterator, context):
        admit(context, "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        health_file = health_pb2.DESCRIPTOR.serialized_pb
        for req in request_iterator:
            resp = reflection_pb2.ServerReflectionResponse(valid_host=req.host, original_request=req)
            which = req.WhichOneof("message_request")
            if which == "list_services":
                resp.list_services_response.service.add(name="grpc.health.v1.Health")
                resp.list_services_response.service.add(name="grpc.reflection.v1alpha.ServerReflection")
            elif which == "file_containing_symbol" and req.file_containing_symbol.startswith("grpc.health.v1."):
                resp.file_descriptor_response.file_descriptor_proto.append(health_file)
            elif which == "file_by_filename" and req.file_by_filename == health_pb2.DESCRIPTOR.name:
                resp.file_descriptor_response.file_descriptor_proto.append(health_file)
            else:
                resp.error_response.error_code = grpc.StatusCode.NOT_FOUND.value[0]
                resp.error_response.error_message = "not found"
            yield resp


def main():
    with open(CERT, "rb") as c, open(KEY, "rb") as k, open(CA, "rb") as a:
        creds = grpc.ssl_server_credentials([(k.read(), c.read())], root_certificates=a.read(),
                                            require_client_auth=REQUIRE_CLIENT_CERT)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(Reflection(), server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    print(port, flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
