wrk.headers["x-api-key"] = "bench-key"
