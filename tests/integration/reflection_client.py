#!/usr/bin/python3
"""A reflection-only gRPC client, speaking the same protocol as grpcurl.

It has no .proto file of Ferry's: it asks each server for its service list and
file descriptors over grpc.reflection.v1alpha, then prints every method with
its request and response messages and their fields.

usage: reflection_client.py <stub-dir> describe <target>...
       reflection_client.py <stub-dir> list <target>
       reflection_client.py <stub-dir> call <target> <full.method> <json-request> [--max-messages=N]

`list` prints one service name per line, like `grpcurl <target> list`.
`call` prints each response as one JSON line; with --max-messages=N a server
stream is cancelled after N messages (a bounded `grpcurl ... Tail`).
"""
import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, json_format  # noqa: E402
from google.protobuf import message_factory  # noqa: E402
from ferry_reflection import reflection_pb2, reflection_pb2_grpc  # noqa: E402


class Reflector:
    def __init__(self, target):
        self.channel = grpc.insecure_channel(target)
        self.stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        self.pool = descriptor_pool.DescriptorPool()
        self.loaded = set()

    def _ask(self, request):
        responses = list(self.stub.ServerReflectionInfo(iter([request]), timeout=10))
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
            stream = rpc(request, timeout=30)
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
            print(json_format.MessageToJson(rpc(request, timeout=30), indent=None))


def describe(targets):
    for target in targets:
        r = Reflector(target)
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
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        if sys.argv[2] == "describe":
            describe(sys.argv[3:])
        elif sys.argv[2] == "list":
            for name in Reflector(sys.argv[3]).services():
                print(name)
        elif sys.argv[2] == "call":
            args = [a for a in sys.argv[3:] if not a.startswith("--max-messages=")]
            limits = [int(a.split("=", 1)[1]) for a in sys.argv[3:] if a.startswith("--max-messages=")]
            Reflector(args[0]).call(args[1], args[2] if len(args) > 2 else "{}", limits[0] if limits else None)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except grpc.RpcError as e:
        print("ERROR %s: %s" % (e.code().name, e.details()))
        return 1
    except json_format.ParseError as e:
        print("ERROR bad request JSON: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
