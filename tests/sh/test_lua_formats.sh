#!/usr/bin/env bash
# The messages of Lua errors are formatted by lua_pushfstring, which knows %s %d %I %f %p %c
# %U and nothing else: a C format there (%g, %lld, %zu, %.3f) turns the user's error into
# "invalid option '%g' to 'lua_pushfstring'". This reads every call of lsdr_error, luaL_error
# and lua_pushfstring in bindings/ and repl/ and fails on any other conversion.
set -euo pipefail
cd "${SDREPL_SOURCE_DIR:-$(dirname "$0")/../..}"
python3 - <<'PY'
import glob, re, sys
bad = []
call = re.compile(r'\b(lsdr_error|luaL_error|lua_pushfstring|lua_pushvfstring)\s*\(\s*L\s*,\s*'
                  r'((?:"(?:[^"\\]|\\.)*"\s*)+)')
for path in sorted(glob.glob('bindings/*.c') + glob.glob('repl/*.c')):
    text = open(path).read()
    for m in call.finditer(text):
        fmt = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))).replace('%%', '')
        for c in re.finditer(r'%(.)', fmt):
            if c.group(1) not in 'sdIfpcU':
                bad.append('%s:%d: %s in "%s"' % (path, text[:m.start()].count('\n') + 1,
                                                  c.group(0), fmt[:60]))
if bad:
    print('conversions lua_pushfstring does not know:\n' + '\n'.join(bad))
    sys.exit(1)
print('every Lua error message format is one lua_pushfstring reads')
PY
