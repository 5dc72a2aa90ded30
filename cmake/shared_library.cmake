# The shared libgoro: its SONAME and the symbols it exports.
#
# SONAME libgoro.so.<major> (libgoro.so.0 throughout 0.x); the file is
# libgoro.so.<version>. Before 1.0 a minor release may change the ABI while
# the SONAME stays: the CMake package version file accepts the same minor
# version only (SameMinorVersion), and the Debian package's shlibs pin
# libgoro0 to the minor version it was built against (debian/rules).
#
# Exported: goro's own symbols only (cmake/goro.map); the headers declare
# nothing with visibility attributes. Undefined symbols are an error at
# link time (-z defs), except the sanitizer hooks, which are weak
# (src/sanitizers/hooks.hpp).

set(GORO_VERSION_SCRIPT ${CMAKE_CURRENT_LIST_DIR}/goro.map)

function(goro_shared_library_properties target)
    set_target_properties(${target} PROPERTIES
        OUTPUT_NAME goro
        VERSION ${PROJECT_VERSION}
        SOVERSION ${PROJECT_VERSION_MAJOR}
        LINK_DEPENDS ${GORO_VERSION_SCRIPT})
    target_link_options(${target} PRIVATE "LINKER:--version-script=${GORO_VERSION_SCRIPT}")
    # A sanitizer's runtime is linked into the program, not the library.
    if(GORO_SANITIZE STREQUAL "")
        target_link_options(${target} PRIVATE "LINKER:-z,defs")
    endif()
endfunction()
