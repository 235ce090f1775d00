# Shell helpers shared by the benchmark scripts (sourced; `started` is the array of the
# PIDs a script started and stops on exit).

forget() { local p=$1 i; for i in "${!started[@]}"; do [ "${started[$i]}" = "$p" ] && unset 'started[i]'; done; return 0; }

wait_port() {  # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# The nginx server directives of the proxy under test: the header policy, streaming, and a
# verified TLS upstream (bench/run.sh and bench/callgrind.sh measure the same nginx).
nginx_proxy_settings() {  # certs hsts hide
  cat <<CONF
    add_header Strict-Transport-Security "$2" always;
    add_header X-Content-Type-Options nosniff always;
    add_header X-Frame-Options SAMEORIGIN always;
    add_header Referrer-Policy strict-origin-when-cross-origin always;
    $3
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-For \$remote_addr;
    proxy_set_header X-Forwarded-Proto https;
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate $1/ca.pem;
    proxy_ssl_name exchange.internal;
    proxy_ssl_server_name on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;
    proxy_ssl_session_reuse on;
CONF
}
