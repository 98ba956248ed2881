# Processes from a POSIX shell (busybox ash, run as `sh -s` with this on stdin): pipelines,
# subshells, command substitution, background jobs, kill, traps, exit codes, here-documents,
# xargs -P, find -exec. Output does not depend on timing.
tmp=$(mktemp -d)
cd "$tmp" || exit 1

echo "== pipelines"
printf 'b\na\nc\n' | sort -r | tr a-z A-Z
seq 1 500 | grep 5 | wc -l
yes abc | head -n 5000 | sort -u
echo one two three | awk '{ print $2 }' | sed 's/w/W/'

echo "== subshells and command substitution"
x=1; (x=2; echo "subshell x=$x"); echo "parent x=$x"
(exit 3); echo "status $?"
echo "nested: $(echo $(echo $(echo three)))"
echo "lines: $(seq 3 | wc -l)"
n=0; for i in $(seq 10); do n=$((n + $(echo $i))); done; echo "sum $n"

echo "== jobs"
sleep 0.1 & p=$!
(sleep 0.05; exit 5) & q=$!
wait $q; echo "second job $?"
wait $p; echo "first job $?"
for i in 1 2 3; do (echo "job $i" > j.$i) & done; wait
cat j.1 j.2 j.3
# (Whether ash reports the killed background job on stderr depends on when it reaps it, on
# Linux too: the subshell keeps that report out of the comparison.)
(sleep 10 & p=$!; kill $p; wait $p; echo "killed: $?") 2>/dev/null
# An asynchronous command ignores SIGINT (given time to start: no race with its start-up).
sleep 0.3 & p=$!; sleep 0.1; kill -INT $p; wait $p; echo "INT: $?"

echo "== traps"
trap 'echo "trap USR1"' USR1
kill -USR1 $$; echo "after USR1"
trap 'echo "trap INT"' INT
kill -INT $$; echo "after INT"
trap - INT USR1
(trap 'echo "subshell EXIT trap"' EXIT; echo "in subshell")
sh -c 'trap "echo trap TERM; exit 7" TERM; kill -TERM $$; sleep 1'; echo "status $?"
sh -c 'kill -TERM $$; echo not reached'; echo "sh killed itself: $?"
sh -c 'trap "" HUP; sh -c "kill -HUP \$\$; echo HUP ignored in the grandchild"'

echo "== exit codes"
false; echo "false $?"
false | true; echo "false | true $?"
true | false; echo "true | false $?"
! true; echo "! true $?"
nonexistent-cmd 2>/dev/null; echo "not found $?"
sh -c 'exit 258'; echo "exit 258: $?"
set -o pipefail 2>/dev/null && { false | true; echo "pipefail $?"; set +o pipefail; }

echo "== here-documents"
cat <<EOF
sum $((40 + 2))
EOF
cat <<'EOF'
literal $x
EOF

echo "== xargs and find"
seq 6 | xargs -n 2 echo
seq 6 | xargs -P 2 -n 1 sh -c 'echo "item $0"' | sort
seq 4 | xargs -n1 sh -c 'exit $(( $0 == 2 ? 1 : 0 ))'; echo "xargs status $?"
mkdir -p d/e; touch d/a d/b d/e/c
find d -type f -exec echo file {} \; | sort
find d -type f -exec ls {} + | sort
find d -name c -exec sh -c 'echo "found $1 from a shell"' sh {} \;

echo "== timeout"
timeout 1 sleep 5; echo "timeout $?"

cd /
rm -rf "$tmp"
echo "== end"
