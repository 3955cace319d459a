#!/usr/bin/env bash
# The English corpus of the reduced Figure 2 runs (FineWeb is not on this machine): the
# GNU Collaborative International Dictionary of English (Debian dict-gcide, each entry a
# document) and the reStructuredText sources of the Python 3.11 documentation
# (python3.11-doc, each file a document), as GPT-2 BPE token shards in
# ${PISA_DATA_DIR:-data}/debian-text (debian_val_000000.bin: the first 1,048,576 tokens;
# debian_train_*.bin: the rest). Installs the two packages when root and they are missing.
# Its losses are not FineWeb's.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
gcide=/usr/share/dictd/gcide.dict.dz
docs=/usr/share/doc/python3.11/html/_sources
if [ ! -f "$gcide" ] || [ ! -d "$docs" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq dict-gcide python3.11-doc >/dev/null
    else
        echo "pisa: needs $gcide and $docs: apt-get install dict-gcide python3.11-doc" >&2
        exit 1
    fi
fi
out=${PISA_DATA_DIR:-data}/debian-text
cargo build --release
target/release/pisa data prepare text "$gcide" "$docs" --out "$out" --name debian \
    --val-tokens 1048576 "$@"
