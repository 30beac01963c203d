# Shared anonymous memory (MAP_SHARED|MAP_ANONYMOUS, 4x the budget) of a parent
# and two fork children: each writes its third and reads the others' (checksums),
# concurrent increments of the same words are never lost, the children keep the
# memory after the parent unmaps it; the pages were evicted from and faulted back
# into the shared region; the same contents with FLUIDMEM_SHARED=0 (kernel memory),
# with --fault-threads 3, and with two such process trees at once evicting each
# other's shared regions under one global budget; status shows the region once, with
# the number of processes mapping it.
. "$(dirname "$0")/lib.sh"
start_monitor --local-memory 64M
fmrun 16M "$T/s.json" "$FM_BUILD/tests/shared" 64 >"$T/s.out" 2>&1 & run=$!
# status lists the region once, under its owner, mapped by the three processes
seen=""
for _ in $(seq 1 100); do
	seen=$("$FLUIDMEM" status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(max([r.get('processes', 0) for c in d['clients'] for r in c['regions_detail'] if r.get('shared')] or [0]))")
	[ "$seen" = 3 ] && break
	sleep 0.05
done
wait $run || fail "$(cat "$T/s.out")"
out=$(cat "$T/s.out")
[ "$seen" = 3 ] || fail "status never showed the shared region mapped by 3 processes (saw ${seen:-nothing})"
note "$out"
grep -q '^ok pages=16384 ' <<<"$out" || fail "no ok line: $out"
assert_paging "$T/s.json"
sev=$(json_get "$T/s.json" shared_evictions) sfs=$(json_get "$T/s.json" shared_faults_store)
note "shared_evictions=$sev shared_faults_store=$sfs"
[ "$sev" -gt 16384 ] || fail "the shared region was not paged out (shared_evictions=$sev)"
[ "$sfs" -gt 8192 ] || fail "few shared pages came back from the store (shared_faults_store=$sfs)"
ref=$(FLUIDMEM_SHARED=0 fmrun 16M "$T/r.json" "$FM_BUILD/tests/shared" 64 2>&1) || fail "kernel shared memory: $ref"
[ "$(json_get "$T/r.json" shared_evictions)" = 0 ] || fail "FLUIDMEM_SHARED=0 still made a shared region"
[ "${ref#ok }" = "${out#ok }" ] || fail "checksum differs from kernel shared memory: '$ref' vs '$out'"
# all of it is freed once the three are gone
for _ in $(seq 1 50); do
	st=$("$FLUIDMEM" status --json)
	python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" "$st" && break
	sleep 0.1
done
python3 -c "import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if not d['clients'] and d['resident_bytes']==0 and ' 0 pages held' in d['store'] else 1)" "$st" || fail "not freed: $st"
stop_monitor
# the same with several handler threads per process
start_monitor --local-memory 64M --fault-threads 3
out3=$(fmrun 16M "$T/s3.json" "$FM_BUILD/tests/shared" 64 2>&1) || fail "--fault-threads 3: $out3"
[ "$out3" = "$out" ] || fail "--fault-threads 3: '$out3' vs '$out'"
[ "$(json_get "$T/s3.json" shared_evictions)" -gt 16384 ] || fail "--fault-threads 3: shared region not paged"
stop_monitor
# two trees at once, 2 x 32 MiB under a 16M global budget (no tag limit): a fault in
# one shared region evicts from the other
ref32=$(FLUIDMEM_SHARED=0 "$FM_BUILD/tests/shared" 32 2>&1) || fail "plain 32 MiB: $ref32"
start_monitor --local-memory 16M
fmrun 1G "$T/a.json" "$FM_BUILD/tests/shared" 32 >"$T/a.out" 2>&1 & a=$!
fmrun 1G "$T/b.json" "$FM_BUILD/tests/shared" 32 >"$T/b.out" 2>&1 & b=$!
wait $a || fail "tree A: $(cat "$T/a.out")"
wait $b || fail "tree B: $(cat "$T/b.out")"
[ "$(cat "$T/a.out")" = "$ref32" ] && [ "$(cat "$T/b.out")" = "$ref32" ] || fail "two trees: '$(cat "$T/a.out")' '$(cat "$T/b.out")' vs '$ref32'"
ea=$(json_get "$T/a.json" shared_evictions) eb=$(json_get "$T/b.json" shared_evictions)
note "two trees: shared_evictions $ea and $eb"
[ "$ea" -gt 0 ] && [ "$eb" -gt 0 ] || fail "two trees: a shared region was not paged ($ea, $eb)"
stop_monitor
