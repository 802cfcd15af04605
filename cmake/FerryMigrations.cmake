# ferry_migrations(<target> SCHEMA <name> DIR <dir> SYMBOL <Symbol> [SHARED <file>...])
# Embeds the numbered SQL files NNN_*.sql found in <dir>, plus the SHARED
# ones (numbered the same way, e.g. common/outbox/schema/001_outbox.sql, the
# outbox every service but audit keeps), into <target>, as a function
# `const ferry::postgres::MigrationSet& <Symbol>()` declared in the generated
# header <schema>_migrations.h. The file number is the version; two files with
# one number are a configure error. A shared file is embedded exactly as if it
# were in <dir>, under its own name, so moving a migration into a shared file
# changes nothing for a database that has it applied.
# <dir>/privileges.sql, when present, is embedded as the set's `privileges`:
# the grants to the services' login roles that `--migrate-only` applies
# after the migrations (docs/operations.md).
function(ferry_migrations target)
  cmake_parse_arguments(ARG "" "SCHEMA;DIR;SYMBOL" "SHARED" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS ${ARG_DIR}/[0-9][0-9][0-9]_*.sql)
  # Ordered by file name (the version), wherever the file lives.
  set(keyed "")
  set(versions "")
  foreach(f IN LISTS sql_files ARG_SHARED)
    get_filename_component(name ${f} NAME)
    if(NOT name MATCHES "^[0-9][0-9][0-9]_.*\\.sql$")
      message(FATAL_ERROR "ferry_migrations(${target}): ${f} is not named NNN_<what>.sql")
    endif()
    string(SUBSTRING ${name} 0 3 version)
    if(version IN_LIST versions)
      message(FATAL_ERROR "ferry_migrations(${target}): two migrations numbered ${version} (${f})")
    endif()
    list(APPEND versions ${version})
    list(APPEND keyed "${name}|${f}")
  endforeach()
  list(SORT keyed)
  set(ordered "")
  foreach(k IN LISTS keyed)
    string(REGEX REPLACE "^[^|]*\\|" "" f "${k}")
    list(APPEND ordered ${f})
  endforeach()
  set(gen_dir ${CMAKE_CURRENT_BINARY_DIR}/migrations_gen)
  set(gen_cc ${gen_dir}/${ARG_SCHEMA}_migrations.cc)
  set(gen_h ${gen_dir}/${ARG_SCHEMA}_migrations.h)
  # The file list itself, rewritten only when it changes: removing a
  # migration regenerates the embedding too (its DEPENDS alone would not).
  # The embedding reads the files to embed from it, in its order.
  set(list_file ${gen_dir}/${ARG_SCHEMA}_files.txt)
  string(JOIN "\n" file_list ${ordered})
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${file_list}\n")
  set(privileges_file "")
  if(EXISTS ${ARG_DIR}/privileges.sql)
    set(privileges_file ${ARG_DIR}/privileges.sql)
  endif()
  add_custom_command(
    OUTPUT ${gen_cc} ${gen_h}
    COMMAND ${CMAKE_COMMAND} -DSCHEMA=${ARG_SCHEMA} -DSYMBOL=${ARG_SYMBOL}
            -DOUT_CC=${gen_cc} -DOUT_H=${gen_h} -DLIST=${list_file} -DPRIVILEGES=${privileges_file}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${ordered} ${list_file} ${privileges_file} ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "embedding migrations of schema ${ARG_SCHEMA}"
    VERBATIM)
  target_sources(${target} PRIVATE ${gen_cc})
  target_include_directories(${target} PUBLIC ${gen_dir})
endfunction()
