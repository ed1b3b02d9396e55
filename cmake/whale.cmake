# Build rules shared by every whale target: warnings as errors, sanitizers, and the layer rule.

set(WHALE_WARNINGS -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers)

if(WHALE_NATIVE)
  add_compile_options(-march=native)
endif()
if(WHALE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# The layers, bottom to top. A layer may include and link only the layers listed before it.
set(WHALE_LAYERS util tensor io kernels tokenizer model runtime train server)

# whale_layer(NAME SOURCES...) defines library whale_NAME, links it to the layers below that
# already exist, and fails the configure step if any file of the layer includes a higher layer.
function(whale_layer name)
  add_library(whale_${name} ${ARGN})
  target_include_directories(whale_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(whale_${name} PRIVATE ${WHALE_WARNINGS})
  list(FIND WHALE_LAYERS ${name} index)
  if(index LESS 0)
    message(FATAL_ERROR "whale_layer: '${name}' is not in WHALE_LAYERS")
  endif()
  list(SUBLIST WHALE_LAYERS ${index} -1 forbidden)
  list(REMOVE_AT forbidden 0)
  file(GLOB_RECURSE files ${CMAKE_CURRENT_SOURCE_DIR}/*.h ${CMAKE_CURRENT_SOURCE_DIR}/*.cc)
  foreach(file ${files})
    file(STRINGS ${file} includes REGEX "^#include \"[a-z_]+/")
    foreach(line ${includes})
      string(REGEX REPLACE "^#include \"([a-z_]+)/.*" "\\1" included "${line}")
      if(included IN_LIST forbidden)
        message(FATAL_ERROR "${file}: layer '${name}' includes the higher layer '${included}' (${line})")
      endif()
    endforeach()
  endforeach()
  # Link the nearest existing layer below; it brings the rest of the stack with it.
  set(below ${index})
  while(below GREATER 0)
    math(EXPR below "${below} - 1")
    list(GET WHALE_LAYERS ${below} lower)
    if(TARGET whale_${lower})
      target_link_libraries(whale_${name} PUBLIC whale_${lower})
      break()
    endif()
  endwhile()
endfunction()

# whale_test(NAME SOURCES... [LIBS ...]) adds a GoogleTest binary registered with CTest.
function(whale_test name)
  cmake_parse_arguments(arg "" "" "LIBS" ${ARGN})
  add_executable(${name} ${arg_UNPARSED_ARGUMENTS})
  target_compile_options(${name} PRIVATE ${WHALE_WARNINGS})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${name} PRIVATE WHALE_TEST_DATA="${PROJECT_SOURCE_DIR}/tests/data")
  add_test(NAME ${name} COMMAND ${name})
endfunction()
