# ferry_proto_library(<name> PROTO <file.proto> [GRPC] [DEPS <targets>...])
# Generates C++ (and gRPC stubs when GRPC is given) for one .proto under
# protos/ and wraps it in a static library named <name>.
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
  add_library(${name} STATIC ${outputs})
  target_include_directories(${name} PUBLIC ${out_dir})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf ${ARG_DEPS})
  if(ARG_GRPC)
    target_link_libraries(${name} PUBLIC gRPC::grpc++)
  endif()
endfunction()
