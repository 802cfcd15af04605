#!/usr/bin/python3
"""A reflection-only gRPC client, speaking the same protocol as grpcurl.

It has no .proto file of Ferry's: it asks each server for its service list and
file descriptors over grpc.reflection.v1alpha, then prints every method with
its request and response messages and their fields.

usage: reflection_client.py <stub-dir> [options] describe <target>...
       reflection_client.py <stub-dir> [options] list <target>
       reflection_client.py <stub-dir> [options] call <target> <full.method> <json-request> [--max-messages=N]

`list` prints one service name per line, like `grpcurl <target> list`.
`call` prints each response as one JSON line; with --max-messages=N a server
stream is cancelled after N messages (a bounded `grpcurl ... Tail`).

Options, as grpcurl spells them (-name value or -name=value; -- also works),
anywhere after <stub-dir>:
  -plaintext            no TLS
  -cacert FILE          TLS, trusting the CA in FILE (default: $FERRY_CACERT)
  -cert FILE -key FILE  a client certificate and its key, for mutual TLS
  -servername NAME      the name the server's certificate must carry
                        (default: the target's host)
  -authority NAME       the :authority of each call, and the certificate name
  -H 'name: value'      metadata sent with every request, reflection included;
                        repeatable
$FERRY_TOKEN, or the first line of the file $FERRY_TOKEN_FILE, adds
`authorization: Bearer <token>` unless an -H names authorization.
With neither -plaintext nor a CA (-cacert, $FERRY_CACERT) the channel is
plaintext, as this client always was; grpcurl would try TLS.
"""
import json
import os
import sys

sys.path.insert(0, sys.argv[1])
# gRPC's own log lines (a failed TLS handshake, once per attempt) would only
# repeat the error reported below.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, json_format  # noqa: E402
from google.protobuf import message_factory  # noqa: E402
from ferry_reflection import reflection_pb2, reflection_pb2_grpc  # noqa: E402


class UsageError(Exception):
    pass


class Connection:
    """How to reach a server: TLS or not, certificates, names and metadata."""

    VALUED = {"cacert", "cert", "key", "servername", "authority", "H"}

    def __init__(self):
        self.plaintext = False
        self.cacert = None
        self.cert = None
        self.key = None
        self.servername = None
        self.authority = None
        self.headers = []

    @classmethod
    def parse(cls, argv, environ):
        """Takes the options out of argv; returns (Connection, the other arguments)."""
        conn, rest, i = cls(), [], 0
        while i < len(argv):
            arg = argv[i]
            name = arg.lstrip("-")
            value = None
            if "=" in name:
                name, value = name.split("=", 1)
            if not arg.startswith("-") or arg.startswith("--max-messages") or arg == "-":
                rest.append(arg)
            elif name == "plaintext" and value is None:
                conn.plaintext = True
            elif name in cls.VALUED:
                if value is None:
                    if i + 1 >= len(argv):
                        raise UsageError("%s needs a value" % arg)
                    i += 1
                    value = argv[i]
                if name == "H":
                    if ":" not in value:
                        raise UsageError("-H %r: expected 'name: value'" % value)
                    key, val = value.split(":", 1)
                    conn.headers.append((key.strip().lower(), val.strip()))
                else:
                    setattr(conn, name, value)
            else:
                raise UsageError("unknown option %s" % arg)
            i += 1
        if conn.plaintext and (conn.cacert or conn.cert or conn.key or conn.servername):
            raise UsageError("-plaintext cannot be combined with -cacert, -cert, -key or -servername")
        if bool(conn.cert) != bool(conn.key):
            raise UsageError("-cert and -key go together")
        if conn.servername and conn.authority and conn.servername != conn.authority:
            raise UsageError("-servername and -authority name different servers")
        if not conn.plaintext and not conn.cacert and environ.get("FERRY_CACERT"):
            conn.cacert = environ["FERRY_CACERT"]
        if not any(k == "authorization" for k, _ in conn.headers):
            token = environ.get("FERRY_TOKEN", "").strip()
            if not token and environ.get("FERRY_TOKEN_FILE"):
                with open(environ["FERRY_TOKEN_FILE"]) as f:
                    token = f.readline().strip()
            if token:
                conn.headers.append(("authorization", "Bearer " + token))
        return conn, rest

    def tls(self):
        return bool(self.cacert or self.cert)

    def channel(self, target):
        options = []
        if self.authority:
            options.append(("grpc.default_authority", self.authority))
        if not self.tls():
            return grpc.insecure_channel(target, options=options)

        def read(path):
            with open(path, "rb") as f:
                return f.read()
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(self.cacert) if self.cacert else None,
            private_key=read(self.key) if self.key else None,
            certificate_chain=read(self.cert) if self.cert else None)
        name = self.servername or self.authority
        if name:
            options.append(("grpc.ssl_target_name_override", name))
        return grpc.secure_channel(target, creds, options=options)


class Reflector:
    def __init__(self, target, conn=None):
        self.conn = conn or Connection()
        self.metadata = tuple(self.conn.headers)
        self.channel = self.conn.channel(target)
        self.stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        self.pool = descriptor_pool.DescriptorPool()
        self.loaded = set()

    def _ask(self, request):
        responses = list(self.stub.ServerReflectionInfo(iter([request]), timeout=10, metadata=self.metadata))
        if responses[0].HasField("error_response"):
            raise RuntimeError(responses[0].error_response.error_message)
        return responses[0]

    def services(self):
        r = self._ask(reflection_pb2.ServerReflectionRequest(list_services=""))
        return [s.name for s in r.list_services_response.service]

    def _add_files(self, response):
        protos = []
        for raw in response.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto()
            fd.ParseFromString(raw)
            protos.append(fd)
        by_name = {fd.name: fd for fd in protos}
        for fd in protos:
            self._add(fd, by_name)

    def _add(self, fd, by_name):
        if fd.name in self.loaded:
            return
        for dep in fd.dependency:
            if dep not in self.loaded:
                if dep in by_name:
                    self._add(by_name[dep], by_name)
                else:
                    self._add_files(self._ask(reflection_pb2.ServerReflectionRequest(file_by_filename=dep)))
        self.pool.Add(fd)
        self.loaded.add(fd.name)

    def service(self, name):
        self._add_files(self._ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=name)))
        return self.pool.FindServiceByName(name)

    def call(self, method_full, request_json, max_messages=None):
        service_name, method_name = method_full.rsplit(".", 1)
        method = self.service(service_name).FindMethodByName(method_name)
        req_cls = message_factory.GetMessageClass(method.input_type) if hasattr(message_factory, "GetMessageClass") \
            else message_factory.MessageFactory(self.pool).GetPrototype(method.input_type)
        resp_cls = message_factory.GetMessageClass(method.output_type) if hasattr(message_factory, "GetMessageClass") \
            else message_factory.MessageFactory(self.pool).GetPrototype(method.output_type)
        request = json_format.Parse(request_json, req_cls())
        path = "/%s/%s" % (service_name, method_name)
        if method.server_streaming:
            rpc = self.channel.unary_stream(path, request_serializer=req_cls.SerializeToString,
                                            response_deserializer=resp_cls.FromString)
            stream = rpc(request, timeout=30, metadata=self.metadata)
            received = 0
            for msg in stream:
                print(json_format.MessageToJson(msg, indent=None), flush=True)
                received += 1
                if max_messages is not None and received >= max_messages:
                    stream.cancel()
                    break
        else:
            rpc = self.channel.unary_unary(path, request_serializer=req_cls.SerializeToString,
                                           response_deserializer=resp_cls.FromString)
            print(json_format.MessageToJson(rpc(request, timeout=30, metadata=self.metadata), indent=None))


def describe(targets, conn):
    for target in targets:
        r = Reflector(target, conn)
        for name in r.services():
            print("service %s @ %s" % (name, target))
            if not name.startswith("ferry."):
                continue
            svc = r.service(name)
            for m in svc.methods:
                print("  rpc %s.%s(%s%s) returns (%s%s)" % (
                    name, m.name, "stream " if m.client_streaming else "", m.input_type.full_name,
                    "stream " if m.server_streaming else "", m.output_type.full_name))
                for msg in (m.input_type, m.output_type):
                    fields = ", ".join("%s:%s" % (f.name, f.number) for f in msg.fields)
                    print("    message %s { %s }" % (msg.full_name, fields))


def main():
    try:
        conn, args = Connection.parse(sys.argv[2:], os.environ)
    except (UsageError, OSError) as e:
        print("reflection_client: %s" % e, file=sys.stderr)
        print(__doc__, file=sys.stderr)
        return 2
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if args[0] == "describe":
            describe(args[1:], conn)
        elif args[0] == "list":
            for name in Reflector(args[1], conn).services():
                print(name)
        elif args[0] == "call":
            rest = [a for a in args[1:] if not a.startswith("--max-messages=")]
            limits = [int(a.split("=", 1)[1]) for a in args[1:] if a.startswith("--max-messages=")]
            if len(rest) < 2:
                print(__doc__, file=sys.stderr)
                return 2
            Reflector(rest[0], conn).call(rest[1], rest[2] if len(rest) > 2 else "{}", limits[0] if limits else None)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except grpc.RpcError as e:
        print("ERROR %s: %s" % (e.code().name, e.details()))
        return 1
    except json_format.ParseError as e:
        print("ERROR bad request JSON: %s" % e)
        return 1
    except OSError as e:  # a certificate or key file that cannot be read
        print("ERROR %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
