#!/usr/bin/env bash
# Writes the nginx configuration for N `codey serve` processes: the generic
# codey.conf and codey.js from this directory, plus the site files
# (codey/upstreams.conf, keys.conf, server.conf, hosts.conf) for the
# servers, keys and names given. See docs/cluster.md.
#
# Usage: codey-site.sh -o DIR --models m1,m2 --server HOST:PORT[=pinned,...] ...
#          [--key USER:KEY ...] [--open] [--upstream-key KEY]
#          [--listen ADDR:PORT] [--host-name NAME ...] [--access-log PATH]
#          [--standalone]
#   -o DIR          nginx's configuration directory: /etc/nginx for Debian's
#                   nginx (writes conf.d/codey.conf and codey/*), or a fresh
#                   directory for --standalone.
#   --models        the models every server has in its codey.yaml (same names everywhere)
#   --server        a codey server, and the models it keeps loaded (pinned):
#                   it is a primary for those, a backup for the others.
#   --key USER:KEY  a person's API key (repeatable); --open: no key needed
#   --upstream-key  the key the servers require (server.api_key), if any
#   --listen        where nginx listens (default 127.0.0.1:8080)
#   --host-name     a Host clients may use (default: localhost, 127.0.0.1, ::1, and the --listen address)
#   --standalone    also write DIR/nginx.conf: nginx run by hand as
#                   `nginx -p DIR -c DIR/nginx.conf -e DIR/logs/error.log`,
#                   with its pid, logs and temp files under DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

out="" models="" listen="127.0.0.1:8080" upstream_key="" open=0 standalone=0 access_log=""
servers=() keys=() hosts=()
die() { echo "codey-site.sh: $*" >&2; exit 2; }
while (($#)); do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --server) servers+=("$2"); shift 2 ;;
    --key) keys+=("$2"); shift 2 ;;
    --open) open=1; shift ;;
    --upstream-key) upstream_key=$2; shift 2 ;;
    --listen) listen=$2; shift 2 ;;
    --host-name) hosts+=("$2"); shift 2 ;;
    --access-log) access_log=$2; shift 2 ;;
    --standalone) standalone=1; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ -n $out ]] || die "-o DIR is required"
((${#servers[@]})) || die "at least one --server HOST:PORT is required"
[[ -n $models ]] || die "--models m1,m2 is required (the models every server has)"
((${#keys[@]} || open)) || die "give --key USER:KEY (one per person) or --open"

# Names go into nginx's configuration: allow only what cannot break it.
safe='^[A-Za-z0-9._:/@+-]+$'
IFS=, read -r -a model_list <<< "$models"
for m in "${model_list[@]}"; do [[ $m =~ $safe ]] || die "model name '$m': only letters, digits and ._:/@+- are allowed"; done
hostport='^[][A-Za-z0-9.:-]+:[0-9]+$'
for s in "${servers[@]}"; do
  [[ ${s%%=*} =~ $hostport ]] || die "--server '$s': expected HOST:PORT[=model,...]"
done
for k in "${keys[@]}"; do
  [[ $k == *:* ]] || die "--key '$k': expected USER:KEY"
  [[ ${k%%:*} =~ ^[A-Za-z0-9._@-]+$ ]] || die "--key: user '${k%%:*}': letters, digits and ._@- only"
  [[ ${k#*:} =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]] || die "--key for '${k%%:*}': at least 16 characters of A-Za-z0-9._~+/=-"
done
[[ -z $upstream_key || $upstream_key =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "--upstream-key: characters A-Za-z0-9._~+/=- only"
[[ $listen =~ $hostport ]] || die "--listen '$listen': expected ADDR:PORT"

mkdir -p "$out/codey" "$out/conf.d"
umask 027  # keys.conf and upstreams.conf hold secrets
cp "$here/codey.conf" "$out/conf.d/codey.conf"
cp "$here/codey.js" "$out/codey/codey.js"

# --- upstreams.conf: every server; per model, its pinned servers first -------
server_line() {  # ADDR [backup]
  echo "    server $1 max_fails=1 fail_timeout=3s${2:+ $2};"
}
keepalive_lines() {
  echo "    keepalive 32;"
  echo "    keepalive_timeout 4s;  # below codey's server.idle_timeout (5s): nginx never reuses a connection codey is closing"
}
{
  echo "# Written by deploy/nginx/codey-site.sh; the servers and how nginx picks one."
  echo "# least_conn: a generation holds its connection for its whole length, so the"
  echo "# server with the fewest requests in flight is the one with the shortest queue."
  echo "upstream codey_all {"
  echo "    zone codey_all 64k;  # shared by the workers: one count of connections and failures"
  echo "    least_conn;"
  for s in "${servers[@]}"; do server_line "${s%%=*}"; done
  keepalive_lines
  echo "}"
  i=0
  map_lines=()
  for m in "${model_list[@]}"; do
    i=$((i + 1))
    primaries=() backups=()
    for s in "${servers[@]}"; do
      addr=${s%%=*} pinned=""
      [[ $s == *=* ]] && pinned=",${s#*=},"
      if [[ $pinned == *",$m,"* ]]; then primaries+=("$addr"); else backups+=("$addr"); fi
    done
    if ((${#primaries[@]} == 0)); then primaries=("${backups[@]}"); backups=(); fi
    echo ""
    echo "# Model '$m': the servers that keep it loaded; the others (backup) load it"
    echo "# on demand, and get its requests only while none of those is up."
    echo "upstream codey_model_$i {"
    echo "    zone codey_model_$i 64k;"
    echo "    least_conn;"
    for a in "${primaries[@]}"; do server_line "$a"; done
    for a in "${backups[@]}"; do server_line "$a" backup; done
    keepalive_lines
    echo "}"
    map_lines+=("    \"$m\" codey_model_$i;")
  done
  echo ""
  echo "# The model a request names (\$codey_model, set by codey.js) -> its group."
  echo "map \$codey_model \$codey_pool {"
  echo "    default codey_all;"
  printf '%s\n' "${map_lines[@]}"
  echo "}"
  echo ""
  echo "# What nginx sends codey as Authorization (codey's server.api_key); \"\" sends none."
  echo "map \"\" \$codey_upstream_authorization {"
  if [[ -n $upstream_key ]]; then echo "    default \"Bearer $upstream_key\";"; else echo "    default \"\";"; fi
  echo "}"
} > "$out/codey/upstreams.conf"

# --- keys.conf: "Bearer KEY" -> user ------------------------------------------
{
  echo "# Written by deploy/nginx/codey-site.sh: one line per person, \"Bearer <key>\" <user>."
  echo "# Revoke a key by removing its line and reloading nginx (nginx -s reload)."
  for k in "${keys[@]}"; do echo "\"Bearer ${k#*:}\" ${k%%:*};"; done
  if ((open)); then echo "default anonymous;  # --open: no key needed"; fi
} > "$out/codey/keys.conf"

# --- hosts.conf: the Host names clients may use --------------------------------
listen_host=${listen%:*}
[[ $listen == "$listen_host" ]] && listen_host=""
{
  echo "# Written by deploy/nginx/codey-site.sh: Host names this edge answers (others: 421)."
  for h in localhost 127.0.0.1 "[::1]" ${listen_host:+"$listen_host"} "${hosts[@]}"; do echo "\"$h\" 1;"; done
} | awk '!seen[$0]++' > "$out/codey/hosts.conf"

# --- server.conf: where nginx listens and logs -----------------------------------
if [[ -z $access_log ]]; then
  if ((standalone)); then access_log="$out/logs/access.log"; else access_log="/var/log/nginx/codey.access.log"; fi
fi
{
  echo "# Written by deploy/nginx/codey-site.sh."
  echo "listen $listen;"
  echo "access_log $access_log codey_json;"
} > "$out/codey/server.conf"

# --- nginx.conf for a standalone nginx (demo, tests): everything under DIR ---------
if ((standalone)); then
  mkdir -p "$out/logs" "$out/tmp"
  cat > "$out/nginx.conf" <<CONF
# Written by deploy/nginx/codey-site.sh --standalone: an nginx of its own,
# run as nginx -p $out -c $out/nginx.conf -e $out/logs/error.log
# (no system paths, no privileged port; never the system service).
load_module /usr/lib/nginx/modules/ngx_http_js_module.so;
worker_processes 1;
pid $out/nginx.pid;
error_log $out/logs/error.log notice;
daemon off;
events {
    worker_connections 1024;
}
http {
    client_body_temp_path $out/tmp/body;
    proxy_temp_path $out/tmp/proxy;
    fastcgi_temp_path $out/tmp/fastcgi;
    uwsgi_temp_path $out/tmp/uwsgi;
    scgi_temp_path $out/tmp/scgi;
    include conf.d/codey.conf;
}
CONF
fi
echo "codey-site.sh: wrote $out/conf.d/codey.conf and $out/codey/ (${#servers[@]} servers, ${#model_list[@]} models)"
