# SPDX-License-Identifier: MIT
# nanopb code generation and binary embedding for pbring.
#
#   pbring_nanopb_library(<target> PROTO_ROOT <dir> PROTOS <rel.proto>...)
#       Generate <rel>.pb.c/.pb.h under ${PBRING_GEN_DIR} for each proto
#       (path relative to PROTO_ROOT) and build them as a static,
#       position-independent library whose users include "<rel>.pb.h".
#   pbring_descriptor_set(<out.fds> PROTO_ROOT <dir> PROTOS <rel.proto>...)
#       protoc --descriptor_set_out --include_imports at build time.
#   pbring_embed(<out.c> INPUT <file> NAME <c name>
#                [ENCODE <msg type> PROTO_ROOT <dir> PROTO <rel.proto>])
#       A C file defining `const unsigned char NAME[]` and
#       `const size_t NAME_len` with INPUT's bytes (first run through
#       protoc --encode=<msg type> when ENCODE is given: INPUT is then text
#       format).
#
# The .options file next to a .proto is only found when protoc-gen-nanopb
# is told the proto root (--nanopb_opt=-I<root>); without it nanopb
# silently generates unbounded callback fields instead. pbring_nanopb.cmake
# therefore also checks that the generator reported reading it.

find_program(PBRING_PROTOC protoc REQUIRED)
find_program(PBRING_NANOPB_PLUGIN protoc-gen-nanopb REQUIRED)
find_package(nanopb CONFIG REQUIRED)

set(PBRING_GEN_DIR ${CMAKE_BINARY_DIR}/gen)
set(_pbring_cmake_dir ${CMAKE_CURRENT_LIST_DIR})

function(pbring_nanopb_library target)
  cmake_parse_arguments(A "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(srcs)
  foreach(rel IN LISTS A_PROTOS)
    string(REGEX REPLACE "\\.proto$" "" base "${rel}")
    set(out ${PBRING_GEN_DIR}/${base}.pb.c ${PBRING_GEN_DIR}/${base}.pb.h)
    set(deps ${A_PROTO_ROOT}/${rel} ${_pbring_cmake_dir}/pbring_nanopb.cmake)
    if(EXISTS ${A_PROTO_ROOT}/${base}.options)
      list(APPEND deps ${A_PROTO_ROOT}/${base}.options)
    endif()
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -DPROTOC=${PBRING_PROTOC}
        -DPLUGIN=${PBRING_NANOPB_PLUGIN} -DROOT=${A_PROTO_ROOT}
        -DPROTO=${rel} -DOUT=${PBRING_GEN_DIR}
        -P ${_pbring_cmake_dir}/pbring_nanopb.cmake
      DEPENDS ${deps}
      COMMENT "nanopb: generating ${base}.pb.c"
      VERBATIM)
    list(APPEND srcs ${out})
  endforeach()
  add_library(${target} STATIC ${srcs})
  set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_include_directories(${target} PUBLIC ${PBRING_GEN_DIR})
  # The generated descriptors name pb_default_field_callback.
  target_link_libraries(${target} PUBLIC nanopb::protobuf-nanopb-static)
endfunction()

function(pbring_descriptor_set out)
  cmake_parse_arguments(A "" "PROTO_ROOT" "PROTOS" ${ARGN})
  set(files)
  foreach(rel IN LISTS A_PROTOS)
    list(APPEND files ${A_PROTO_ROOT}/${rel})
  endforeach()
  get_filename_component(dir ${out} DIRECTORY)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${dir}
    COMMAND ${PBRING_PROTOC} -I${A_PROTO_ROOT} --include_imports
      --descriptor_set_out=${out} ${A_PROTOS}
    WORKING_DIRECTORY ${A_PROTO_ROOT}
    DEPENDS ${files}
    COMMENT "protoc: descriptor set ${out}"
    VERBATIM)
endfunction()

function(pbring_embed out)
  cmake_parse_arguments(A "" "INPUT;NAME;ENCODE;PROTO_ROOT;PROTO" "" ${ARGN})
  set(args -DIN=${A_INPUT} -DOUT=${out} -DNAME=${A_NAME})
  set(deps ${A_INPUT} ${_pbring_cmake_dir}/pbring_embed.cmake)
  if(A_ENCODE)
    list(APPEND args -DPROTOC=${PBRING_PROTOC} -DENCODE=${A_ENCODE}
      -DROOT=${A_PROTO_ROOT} -DPROTO=${A_PROTO})
    list(APPEND deps ${A_PROTO_ROOT}/${A_PROTO})
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} ${args} -P ${_pbring_cmake_dir}/pbring_embed.cmake
    DEPENDS ${deps}
    COMMENT "embedding ${A_INPUT} as ${A_NAME}"
    VERBATIM)
endfunction()
