-- wrk script for scenario c of bench/run.sh: keep-alive POST of a 64 KiB body (run.sh points it at /upload).
wrk.method = "POST"
wrk.body = string.rep("0123456789abcdef", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
