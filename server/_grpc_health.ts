/**
 * The standard health service, `grpc.health.v1.Health`, as Kubernetes gRPC probes and
 * `grpc_health_probe` call it: `Check` and `Watch` report SERVING for the server as a whole
 * (service "") and for each Purple service, NOT_SERVING once shutdown has begun. An unknown
 * service is NOT_FOUND for `Check` and SERVICE_UNKNOWN for `Watch`, as the protocol says.
 * Messages are encoded with the protobufjs types parsed for reflection (not a hot path).
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { describe } from "./_grpc_reflection.ts";

/** `HealthCheckResponse.ServingStatus`. */
export const SERVING_STATUS = Object.freeze({
  UNKNOWN: 0,
  SERVING: 1,
  NOT_SERVING: 2,
  SERVICE_UNKNOWN: 3,
});

/** The full name of the health service. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";

interface HealthCheckRequest {
  service: string;
}

interface HealthCheckResponse {
  status: number;
}

function definition(): grpc.ServiceDefinition {
  const { root } = describe();
  const request = root.lookupType(`grpc.health.v1.HealthCheckRequest`);
  const response = root.lookupType(`grpc.health.v1.HealthCheckResponse`);
  const method = (name: string, responseStream: boolean) => ({
    path: `/${HEALTH_SERVICE}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: (message: HealthCheckRequest) =>
      Buffer.from(request.encode(request.fromObject(message)).finish()),
    requestDeserialize: (bytes: Uint8Array): HealthCheckRequest =>
      request.toObject(request.decode(bytes), { defaults: true }) as HealthCheckRequest,
    responseSerialize: (message: HealthCheckResponse) =>
      Buffer.from(response.encode(response.fromObject(message)).finish()),
    responseDeserialize: (bytes: Uint8Array): HealthCheckResponse =>
      response.toObject(response.decode(bytes), { defaults: true }) as HealthCheckResponse,
  });
  return { Check: method("Check", false), Watch: method("Watch", true) };
}

/** The health of one server, registered on it with {@linkcode Health.addTo}. */
export class Health {
  #services: ReadonlySet<string>;
  #serving = true;
  #watchers = new Set<grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>>();

  /** @param services The full names of the services served, such as `proto.Cache`. */
  constructor(services: readonly string[]) {
    this.#services = new Set(["", ...services]);
  }

  /**
   * Registers `grpc.health.v1.Health` on a server.
   * @param server The server, before it binds.
   */
  addTo(server: grpc.Server): void {
    server.addService(definition(), {
      Check: (
        call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        callback: grpc.sendUnaryData<HealthCheckResponse>,
      ) => {
        const { service } = call.request;
        if (!this.#services.has(service)) {
          callback({ code: grpc.status.NOT_FOUND, details: `Unknown service '${service}'` });
        } else callback(null, { status: this.#status(service) });
      },
      Watch: (call: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        call.write({ status: this.#status(call.request.service) });
        if (!this.#serving) return call.end();
        this.#watchers.add(call);
        call.on("cancelled", () => this.#watchers.delete(call));
      },
    });
  }

  /** Reports NOT_SERVING from now on, and ends every `Watch` call with that status. */
  shutdown(): void {
    this.#serving = false;
    for (const call of this.#watchers) {
      call.write({ status: this.#status(call.request.service) });
      call.end();
    }
    this.#watchers.clear();
  }

  #status(service: string): number {
    if (!this.#services.has(service)) return SERVING_STATUS.SERVICE_UNKNOWN;
    return this.#serving ? SERVING_STATUS.SERVING : SERVING_STATUS.NOT_SERVING;
  }
}
