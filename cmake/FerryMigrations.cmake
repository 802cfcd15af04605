# ferry_migrations(<target> SCHEMA <name> DIR <dir>)
# Embeds the numbered SQL files NNN_*.sql found in <dir> into <target>, as a
# function `const ferry::postgres::MigrationSet& <Symbol>()` declared in the
# generated header <schema>_migrations.h. The file number is the version.
function(ferry_migrations target)
  cmake_parse_arguments(ARG "" "SCHEMA;DIR;SYMBOL" "" ${ARGN})
  file(GLOB sql_files CONFIGURE_DEPENDS ${ARG_DIR}/[0-9][0-9][0-9]_*.sql)
  list(SORT sql_files)
  set(gen_dir ${CMAKE_CURRENT_BINARY_DIR}/migrations_gen)
  set(gen_cc ${gen_dir}/${ARG_SCHEMA}_migrations.cc)
  set(gen_h ${gen_dir}/${ARG_SCHEMA}_migrations.h)
  # The file list itself, rewritten only when it changes: removing a
  # migration regenerates the embedding too (its DEPENDS alone would not).
  set(list_file ${gen_dir}/${ARG_SCHEMA}_files.txt)
  string(JOIN "\n" file_list ${sql_files})
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${file_list}\n")
  add_custom_command(
    OUTPUT ${gen_cc} ${gen_h}
    COMMAND ${CMAKE_COMMAND} -DSCHEMA=${ARG_SCHEMA} -DSYMBOL=${ARG_SYMBOL}
            -DOUT_CC=${gen_cc} -DOUT_H=${gen_h} -DDIR=${ARG_DIR}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    DEPENDS ${sql_files} ${list_file} ${PROJECT_SOURCE_DIR}/cmake/EmbedMigrations.cmake
    COMMENT "embedding migrations of schema ${ARG_SCHEMA}"
    VERBATIM)
  target_sources(${target} PRIVATE ${gen_cc})
  target_include_directories(${target} PUBLIC ${gen_dir})
endfunction()
