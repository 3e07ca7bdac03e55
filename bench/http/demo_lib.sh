# Shared by the single-demo benchmarks (observe.sh, observe_instructions.sh, console_cost.sh):
# source it. Starting a demo, seeding its tenants and timing wrk against it.

# Waits until the demo on port $1 answers its public site ($2 tries, $3 s apart).
wait_demo() {
  for _ in $(seq "$2"); do
    curl -s -o /dev/null -H 'host: localhost' "http://127.0.0.1:$1/api/tenants" && return 0
    sleep "$3"
  done
  return 1
}

# Signs up 20 tenants through the demo on port $1: names $2<i>, subdomains lowercase($2)<i>,
# i = 0..19 (hosts <sub>.localhost, as the benchmarks' wrk scripts expect).
seed_tenants() {
  local sub
  sub=$(echo "$2" | tr 'A-Z' 'a-z')
  for i in $(seq 0 19); do
    curl -s -o /dev/null -X POST -H 'host: localhost' -d "name=$2$i&subdomain=$sub$i" \
      "http://127.0.0.1:$1/signup"
  done
}

# A 5 s warm-up, then wrk for $4 s with script $3 against the demo (pid $1) on port $2. Sets
# reqs, rps, lat, non2xx and cpu (the server's CPU microseconds per request, utime + stime).
wrk_measure() {
  wrk -t1 -c16 -d5s -s "$3" "http://127.0.0.1:$2/" >/dev/null
  local t0 t1 out
  t0=$(awk '{print $14+$15}' "/proc/$1/stat")
  out=$(wrk -t1 -c16 -d"$4s" -s "$3" "http://127.0.0.1:$2/")
  t1=$(awk '{print $14+$15}' "/proc/$1/stat")
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  lat=$(echo "$out" | awk '/Latency/{print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  cpu=$(echo "($t1-$t0)*1000000/$(getconf CLK_TCK)/$reqs" | bc -l)
}
