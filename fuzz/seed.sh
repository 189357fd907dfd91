#!/bin/sh
# Fills fuzz/corpus with seed inputs: the sample archives, archives of every format
# written by `tenant-operator generate`, and for the format1 target the three files
# of each format-1 archive joined by a line `%%`.
# Usage: fuzz/seed.sh [TENANT_OPERATOR_BINARY] [SAMPLE_ARCHIVE_FOLDER]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
binary=${1:-$here/../target/debug/tenant-operator}
samples=${2:-$here/../../shared/examples}
open_dir=$here/corpus/archive_open
format1_dir=$here/corpus/format1
mkdir -p "$open_dir" "$format1_dir"

if [ -d "$samples" ]; then
    cp "$samples"/*.zip "$open_dir"/
fi
cp "$here"/../examples/*.zip "$open_dir"/

for format in 1 2 3; do
    for seed in 1 2; do
        "$binary" generate --format "$format" --seed "$seed" --objects 6 --ranges 2 \
            --numbers 5 --output "$open_dir/generated-v$format-$seed.zip"
    done
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for archive in "$open_dir"/*.zip; do
    rm -rf "${work:?}"/*
    unzip -q -o "$archive" -d "$work" 2>/dev/null || continue
    [ -f "$work/export.properties" ] || continue
    name=$(basename "$archive" .zip)
    {
        cat "$work/export.properties"
        printf '\n%%%%\n'
        cat "$work/access_numbers.csv"
        printf '\n%%%%\n'
        cat "$work/objects.csv"
    } > "$format1_dir/$name"
done
ls "$open_dir" "$format1_dir" | wc -l
