# Precompiled headers. Boost.Beast/Asio, nlohmann::json, CLI11 and GoogleTest cost 5-15 s of parsing
# in every translation unit that includes them; a cold build spent most of its time there. Two
# shared precompiled headers carry them, one for the libraries and one for the test programs, and
# each target reuses one (REUSE_FROM) instead of compiling its own. GCC accepts a precompiled
# header only when the flags match, which holds because every target takes its flags from
# llmsync_options; a mismatch is a -Winvalid-pch warning, an error under LLMSYNC_WERROR.
#   llmsync_use_pch(TARGET lib|test)
#
# Off by default: measured (docs/ARCHITECTURE.md, "Build and test"), loading these headers costs
# more than parsing what a translation unit actually includes: GCC spends 6.5 s loading the library
# header (CLI11 alone takes 5.6 s to load, as long as parsing it) and 13 s under the sanitizer
# flags, so a file like api/sse.cpp went from 0.5 s to 6.6 s. Kept as an option for re-measuring.
option(LLMSYNC_PCH "Use precompiled headers" OFF)

set(LLMSYNC_PCH_COMMON
  <utility> <algorithm> <atomic> <chrono> <cstdint> <functional> <map> <memory> <mutex> <optional>
  <string> <string_view> <thread> <unordered_map> <vector>
  <boost/asio.hpp> <boost/beast/core.hpp> <boost/beast/http.hpp> <nlohmann/json.hpp>)

if(LLMSYNC_PCH)
  find_package(nlohmann_json 3 REQUIRED)
  find_package(Boost 1.74 REQUIRED)
  add_library(llmsync_pch_lib OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
  target_link_libraries(llmsync_pch_lib PRIVATE llmsync_options Boost::headers nlohmann_json::nlohmann_json)
  target_compile_definitions(llmsync_pch_lib PRIVATE BOOST_ALL_NO_LIB)
  target_precompile_headers(llmsync_pch_lib PRIVATE ${LLMSYNC_PCH_COMMON} <CLI/CLI.hpp>)
endif()

function(llmsync_use_pch target kind)
  if(NOT LLMSYNC_PCH)
    return()
  endif()
  # Boost::headers defines BOOST_ALL_NO_LIB (it matters only to MSVC's auto-linking); every target
  # that shares a precompiled header defines it, so that their flags match the header's.
  target_compile_definitions(${target} PRIVATE BOOST_ALL_NO_LIB)
  if(kind STREQUAL "test")
    if(NOT TARGET llmsync_pch_test)
      find_package(GTest REQUIRED)
      add_library(llmsync_pch_test OBJECT ${PROJECT_SOURCE_DIR}/cmake/pch_anchor.cpp)
      target_link_libraries(llmsync_pch_test PRIVATE llmsync_options Boost::headers
                            nlohmann_json::nlohmann_json GTest::gtest GTest::gmock)
      # The same definitions as every test program (tests/CMakeLists.txt).
      target_compile_definitions(llmsync_pch_test PRIVATE BOOST_ALL_NO_LIB
        LLMSYNC_SOURCE_DIR="${PROJECT_SOURCE_DIR}" LLMSYNC_BINARY_DIR="${PROJECT_BINARY_DIR}")
      target_precompile_headers(llmsync_pch_test PRIVATE ${LLMSYNC_PCH_COMMON}
                                <gtest/gtest.h> <gmock/gmock.h>)
    endif()
    target_precompile_headers(${target} REUSE_FROM llmsync_pch_test)
  else()
    target_precompile_headers(${target} REUSE_FROM llmsync_pch_lib)
  endif()
endfunction()
