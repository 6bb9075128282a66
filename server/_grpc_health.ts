/**
 * The standard health service, `grpc.health.v1.Health`, as Kubernetes gRPC probes and
 * `grpc_health_probe` call it: `Check` and `Watch` report SERVING for the server as a whole
 * (service "") and for each Purple service, NOT_SERVING once shutdown has begun. An unknown
 * service is NOT_FOUND for `Check` and SERVICE_UNKNOWN for `Watch`, as the protocol says.
 * Messages use the codecs generated from `proto/grpc/health/v1/health.proto`, the same
 * descriptors that reflection serves.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { HEALTH_STATUS as SERVING_STATUS, healthCodecs } from "@purple/protocol/wire";

/** What a client asks: the status of a service. */
interface HealthCheckRequest {
  service: string;
}

/** What the server answers: a serving status. */
interface HealthCheckResponse {
  status: number;
}

/** The full name of the health service. */
export const HEALTH_SERVICE = "grpc.health.v1.Health";

function definition(): grpc.ServiceDefinition {
  const { request, response } = healthCodecs();
  const method = (name: string, responseStream: boolean) => ({
    path: `/${HEALTH_SERVICE}/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: request.encode,
    requestDeserialize: request.decode,
    responseSerialize: response.encode,
    responseDeserialize: response.decode,
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
