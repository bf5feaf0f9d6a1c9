# SPDX-License-Identifier: MIT
# cmake -DPROTOC= -DPLUGIN= -DROOT= -DPROTO= -DOUT= -P pbring_nanopb.cmake
#
# Run protoc with the nanopb plugin on ROOT/PROTO and fail unless the
# generator read the .options file beside the proto (it silently ignores a
# file it cannot find) and matched every line of it.
string(REGEX REPLACE "\\.proto$" ".options" opts "${PROTO}")
file(MAKE_DIRECTORY ${OUT})
execute_process(
  COMMAND ${PROTOC} --plugin=protoc-gen-nanopb=${PLUGIN} -I${ROOT}
    --nanopb_out=${OUT} --nanopb_opt=-I${ROOT}
    --nanopb_opt=--error-on-unmatched --nanopb_opt=-v ${ROOT}/${PROTO}
  WORKING_DIRECTORY ${ROOT}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nanopb generation of ${PROTO} failed:\n${err}")
endif()
if(EXISTS ${ROOT}/${opts} AND NOT err MATCHES "Reading options from [^\n]*${opts}")
  message(FATAL_ERROR "nanopb did not read ${ROOT}/${opts}")
endif()
