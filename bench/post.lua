wrk.method = "POST"
wrk.body = '{"prompt": "A red apple on a white table", "aspect_ratio": "16:9"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "bench-key"
