# Script mode: writes OUT_CC/OUT_H embedding every file listed in LIST (one
# path a line, in version order; see FerryMigrations.cmake) as a migration
# named after the file, its number being the version.
file(STRINGS ${LIST} files)
set(body "")
foreach(f IN LISTS files)
  get_filename_component(name ${f} NAME)
  string(REGEX MATCH "^[0-9]+" version ${name})
  math(EXPR version "${version} + 0")
  file(READ ${f} sql)
  string(APPEND body "      {${version}, \"${name}\", R\"ferrysql(${sql})ferrysql\"},\n")
endforeach()
set(privileges "")
if(PRIVILEGES)
  file(READ ${PRIVILEGES} privileges)
endif()
get_filename_component(hname ${OUT_H} NAME)
file(WRITE ${OUT_H} "#pragma once\n\n#include \"common/postgres/migrator.h\"\n\n// Generated from ${LIST}.\nconst ferry::postgres::MigrationSet& ${SYMBOL}();\n")
file(WRITE ${OUT_CC} "#include \"${hname}\"\n\nconst ferry::postgres::MigrationSet& ${SYMBOL}() {\n  static const ferry::postgres::MigrationSet* set = new ferry::postgres::MigrationSet{\"${SCHEMA}\", {\n${body}  }, R\"ferrysql(${privileges})ferrysql\"};\n  return *set;\n}\n")
