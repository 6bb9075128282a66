# Purple on the official Deno image: HTTP on 8080 and gRPC on 8081 over one backend (disk by
# default, its data on the volume /data), as the non-root user `deno`.
#
#   docker build -t purple:0.1.0 .
#   docker run --rm -p 8080:8080 -p 8081:8081 -v purple-data:/data purple:0.1.0
#   docker run --rm -p 8080:8080 purple:0.1.0 purple http --host 0.0.0.0 --backend memory
FROM denoland/deno:2.9.6

WORKDIR /app
RUN chown deno:deno /app
USER deno

# The dependencies in a layer of their own: rebuilt only when these four files change.
COPY --chown=deno:deno deno.json deno.lock ./
COPY --chown=deno:deno client/deno.json client/
COPY --chown=deno:deno protocol/deno.json protocol/
RUN deno install --frozen

# The code, and every module it loads (the gRPC server, the backends, the TODO example).
COPY --chown=deno:deno . .
RUN deno cache --frozen mod.ts examples/todo/main.ts bin/healthcheck.ts

USER root
RUN mkdir /data && chown deno:deno /data
USER deno

ENV PATH=/app/bin:$PATH
ENV PURPLE_DATA_DIR=/data
VOLUME /data
EXPOSE 8080 8081

# Asks the purple of this container on the ports, protocol and address its command and variables
# give it (HTTP: GET /ping, over TLS with --tls-cert; gRPC alone: a connection to its port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["deno", "run", "-A", "/app/bin/healthcheck.ts"]

# Purple binds loopback by default; in a container it must listen on every interface.
CMD ["purple", "--host", "0.0.0.0"]
