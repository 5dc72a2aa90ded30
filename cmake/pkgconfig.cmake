# goro.pc for pkg-config users, installed to <libdir>/pkgconfig.
#
# The file is relocatable (paths relative to ${pcfiledir}), so
# `cmake --install build --prefix /anywhere` gives a working goro.pc.
# A static libgoro needs Boost.Context on the link line of every consumer
# (Libs); a shared one needs it only when linking statically (Libs.private).
# Debian's Boost ships no .pc files, so it is named with -l, not Requires.

file(RELATIVE_PATH GORO_PC_RELATIVE_PREFIX "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig"
     "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" GORO_PC_RELATIVE_PREFIX "${GORO_PC_RELATIVE_PREFIX}")
foreach(kind INCLUDEDIR LIBDIR)
    if(IS_ABSOLUTE "${CMAKE_INSTALL_${kind}}")
        set(GORO_PC_${kind} "${CMAKE_INSTALL_${kind}}")
    else()
        set(GORO_PC_${kind} "\${prefix}/${CMAKE_INSTALL_${kind}}")
    endif()
endforeach()

set(_goro_boost "-lboost_context")
get_target_property(_goro_boost_location Boost::context LOCATION)
if(_goro_boost_location)
    get_filename_component(_goro_boost_dir "${_goro_boost_location}" DIRECTORY)
    if(NOT _goro_boost_dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES)
        set(_goro_boost "-L${_goro_boost_dir} -lboost_context")
    endif()
endif()
if(GORO_SHARED)
    set(GORO_PC_LIBS "-pthread")
    set(GORO_PC_LIBS_PRIVATE "${_goro_boost}")
else()
    set(GORO_PC_LIBS "${_goro_boost} -pthread")
    set(GORO_PC_LIBS_PRIVATE "")
endif()

configure_file(${CMAKE_CURRENT_LIST_DIR}/goro.pc.in ${PROJECT_BINARY_DIR}/goro.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/goro.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
    COMPONENT dev)
