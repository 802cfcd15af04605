# ferry_proto_library(<name> PROTO <file.proto> [GRPC] [DEPS <targets>...])
# Generates C++ (and gRPC stubs when GRPC is given) for one .proto under
# protos/ and wraps it in a static library named <name>. With GRPC, the
# messages alone are also in <name>_messages (no gRPC), which <name> links.
function(ferry_proto_library name)
  cmake_parse_arguments(ARG "GRPC" "PROTO" "DEPS" ${ARGN})
  set(proto_root ${PROJECT_SOURCE_DIR}/protos)
  set(out_dir ${PROJECT_BINARY_DIR}/gen)
  get_filename_component(stem ${ARG_PROTO} NAME_WE)
  get_filename_component(rel_dir ${ARG_PROTO} DIRECTORY)
  set(base ${out_dir}/${rel_dir}/${stem})
  set(outputs ${base}.pb.cc ${base}.pb.h)
  set(args --proto_path=${proto_root} --proto_path=/usr/include --cpp_out=${out_dir})
  if(ARG_GRPC)
    list(APPEND outputs ${base}.grpc.pb.cc ${base}.grpc.pb.h)
    list(APPEND args --grpc_out=${out_dir} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN})
  endif()
  file(MAKE_DIRECTORY ${out_dir})
  file(GLOB proto_deps ${proto_root}/ferry/v1/*.proto)
  add_custom_command(
    OUTPUT ${outputs}
    COMMAND ${Protobuf_PROTOC_EXECUTABLE} ${args} ${proto_root}/${ARG_PROTO}
    DEPENDS ${proto_root}/${ARG_PROTO} ${proto_deps}
    COMMENT "protoc ${ARG_PROTO}"
    VERBATIM)
  if(ARG_GRPC)
    # <name>_messages: the messages alone, for code that must not link gRPC
    # (a service's logic library); <name>: the messages and the gRPC stubs.
    add_library(${name}_messages STATIC ${base}.pb.cc ${base}.pb.h)
    target_include_directories(${name}_messages PUBLIC ${out_dir})
    target_link_libraries(${name}_messages PUBLIC protobuf::libprotobuf ${ARG_DEPS})
    add_library(${name} STATIC ${base}.grpc.pb.cc ${base}.grpc.pb.h)
    target_link_libraries(${name} PUBLIC ${name}_messages gRPC::grpc++)
  else()
    add_library(${name} STATIC ${outputs})
    target_include_directories(${name} PUBLIC ${out_dir})
    target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  endif()
endfunction()
