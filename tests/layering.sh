#!/bin/sh
# Checks the layering rule of DEVELOPERS.md: proto88b7/, kme/ and netconf/
# never include each other's headers, and none of them includes agent/.
# Prints one TAP line per module.
set -u
mods="proto88b7 kme netconf"
n=0
bad=0
for m in $mods; do
	[ -d "$m" ] || continue
	n=$((n + 1))
	found=""
	for other in $mods agent; do
		[ "$other" = "$m" ] && continue
		[ -d "$other" ] || continue
		for h in $(cd "$other" && find . -name '*.h' | sed 's#^\./##'); do
			[ -e "$m/$h" ] && continue   # same name in both: the module's own
			hits=$(grep -rlE "#[[:space:]]*include[[:space:]]*[\"<]($other/)?$h[\">]" \
				--include='*.c' --include='*.h' "$m" 2>/dev/null)
			[ -n "$hits" ] && found="$found $(echo "$hits" | tr '\n' ' ')-> $other/$h;"
		done
	done
	if [ -z "$found" ]; then
		echo "ok $n - $m includes no other module"
	else
		echo "not ok $n - $m includes another module:$found"
		bad=1
	fi
done
exit $bad
