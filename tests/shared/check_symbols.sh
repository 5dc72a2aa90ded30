#!/usr/bin/env bash
# Checks the shared libgoro: its SONAME, that it exports goro's symbols only
# (cmake/goro.map: nothing of Boost, the C++ library or any other code it
# was built with), and that it hides nothing a program needs: every symbol
# the objects of goro's own tests and examples take from libgoro.a must be
# exported by libgoro.so.
# Usage: check_symbols.sh <libgoro.so> <expected SONAME> <libgoro.a or -> <build dir>
set -euo pipefail
so=$1 soname=$2 archive=$3 build=$4

got=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
[[ $got == "$soname" ]] || { echo "SONAME is '$got', expected $soname"; exit 1; }
echo "SONAME $got"

exports=$(nm -D --defined-only "$so" | awk '{print $NF}' | sort -u)
count=$(wc -l <<<"$exports")
demangled=$(c++filt <<<"$exports")
if grep -qi moodycamel <<<"$demangled"; then
    echo "moodycamel symbols exported:"
    grep -i moodycamel <<<"$demangled"
    exit 1
fi
allowed='^((vtable|typeinfo|typeinfo name|VTT|guard variable|TLS init function|TLS wrapper function) for |(non-virtual |virtual |covariant return )?thunk to |construction vtable for .*-in-)?goro::'
foreign=$(grep -Ev "$allowed" <<<"$demangled" || true)
if [[ -n $foreign ]]; then
    echo "exported symbols that are not goro's:"
    echo "$foreign" | head -40
    exit 1
fi
echo "$count exported symbols, all goro's"

[[ $archive == - ]] && exit 0
mapfile -t objects < <(find "$build" -path '*/CMakeFiles/*.dir/*' -name '*.o' ! -path '*/goro.dir/*' ! -path '*/goro_shared.dir/*')
((${#objects[@]})) || { echo "no program objects under $build"; exit 1; }
needed=$(comm -23 <(nm --undefined-only "${objects[@]}" 2>/dev/null | awk 'NF>=2 {print $NF}' | sort -u) \
                  <(nm --defined-only --extern-only "${objects[@]}" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u))
from_archive=$(comm -12 <(echo "$needed") \
    <(nm --defined-only --extern-only "$archive" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u))
hidden=$(comm -23 <(echo "$from_archive") <(echo "$exports"))
if [[ -n $hidden ]]; then
    echo "symbols the programs take from libgoro.a that libgoro.so does not export:"
    c++filt <<<"$hidden" | head -40
    exit 1
fi
echo "${#objects[@]} program objects: all $(grep -c . <<<"$from_archive") symbols they take from libgoro are exported"
