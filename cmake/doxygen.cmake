# The API reference: `cmake --build <dir> --target docs` runs Doxygen over the
# public headers (docs/Doxyfile.in) into <dir>/docs/html; any Doxygen warning
# fails it. Defined when doxygen (Debian: doxygen) and python3 (the input
# filter, docs/doxygen_filter.py) are found, and only when goro is the
# top-level project (a parent may have a `docs` target of its own). Its test
# is Docs.DoxygenWithoutWarnings (tests/CMakeLists.txt).
if(PROJECT_IS_TOP_LEVEL)
    find_package(Doxygen QUIET)
    find_package(Python3 QUIET COMPONENTS Interpreter)
    if(DOXYGEN_FOUND AND Python3_FOUND)
        # Doxygen runs the filter once per header: name the interpreter
        # itself, not a launcher in front of it (a pyenv shim, a chain of
        # shell scripts, took 20 of the target's 30 seconds).
        execute_process(COMMAND ${Python3_EXECUTABLE} -c "import sys; print(sys.executable)"
            OUTPUT_VARIABLE GORO_PYTHON3 OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE goro_py_rc)
        if(NOT goro_py_rc EQUAL 0 OR GORO_PYTHON3 STREQUAL "")
            set(GORO_PYTHON3 ${Python3_EXECUTABLE})
        endif()
        configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)
        add_custom_target(docs
            COMMAND ${CMAKE_COMMAND} -E rm -rf ${PROJECT_BINARY_DIR}/docs
            COMMAND ${DOXYGEN_EXECUTABLE} ${PROJECT_BINARY_DIR}/Doxyfile
            WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
            COMMENT "goro API reference (Doxygen): ${PROJECT_BINARY_DIR}/docs/html/index.html"
            VERBATIM)
    else()
        message(STATUS "goro: no doxygen or python3: no `docs` target")
    endif()
endif()
