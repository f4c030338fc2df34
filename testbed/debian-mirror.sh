#!/usr/bin/env bash
# Print "MIRROR SUITE" for the machine's main Debian archive, read from its apt sources.
# The repository never names a package host: the mirror is whatever this machine already uses.
set -o errexit -o nounset -o pipefail

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [[ -z "$codename" ]]; then
  echo "debian-mirror: cannot read VERSION_CODENAME from /etc/os-release; is this Debian?" >&2
  exit 1
fi

mirror=""
# deb822 sources (*.sources): a stanza with "Types: deb", the plain codename among its
# Suites and "main" among its Components.
shopt -s nullglob
for f in /etc/apt/sources.list.d/*.sources; do
  mirror=$(awk -v codename="$codename" '
    function flush() {
      if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " codename " ") && components ~ /(^| )main( |$)/ && uris != "") {
        split(uris, u, " "); print u[1]; found = 1; exit
      }
      types = suites = components = uris = ""
    }
    /^[[:space:]]*$/ { flush(); next }
    /^[[:space:]]*#/ { next }
    tolower($1) == "types:"      { $1 = ""; types = $0 }
    tolower($1) == "uris:"       { $1 = ""; sub(/^ +/, ""); uris = $0 }
    tolower($1) == "suites:"     { $1 = ""; suites = $0 }
    tolower($1) == "components:" { $1 = ""; components = $0 }
    END { if (!found) flush() }
  ' "$f")
  [[ -n "$mirror" ]] && break
done

# One-line sources: "deb [options] URI codename main ..."
if [[ -z "$mirror" ]]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r "$f" ]] || continue
    mirror=$(awk -v codename="$codename" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1) == codename) { for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit } }
      }' "$f")
    [[ -n "$mirror" ]] && break
  done
fi

if [[ -z "$mirror" ]]; then
  echo "debian-mirror: no 'deb' source for '$codename main' in /etc/apt/sources.list(.d);" \
       "add the machine's Debian mirror to apt's sources, or set DATASAFE_PG_IMAGE to an existing image." >&2
  exit 1
fi
echo "$mirror $codename"
