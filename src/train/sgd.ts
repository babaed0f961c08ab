/**
 * SGD with momentum and weight decay, with torch.optim.SGD's update rule:
 *   g = grad + weight_decay * p;  buf = momentum * buf + g (buf = g on the first step);  p -= lr * buf.
 * Runs on host Float32Arrays: the update is memory-bound and cheap next to the network.
 */
export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
  /** Parameters excluded from weight decay (e.g. biases), by name. */
  noDecay?: (name: string) => boolean;
}

export class Sgd {
  /** Momentum buffers by parameter name (saved in checkpoints for bit-exact resume). */
  readonly momentum = new Map<string, Float32Array>();
  private readonly mu: number;
  private readonly wd: number;

  constructor(private readonly opts: SgdOptions = {}) {
    this.mu = opts.momentum ?? 0.9;
    this.wd = opts.weightDecay ?? 0;
  }

  /** Applies one step in place to `params` with gradients `grads` (same keys and sizes). */
  step(params: ReadonlyMap<string, Float32Array>, grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    for (const [name, g] of grads) {
      const p = params.get(name);
      if (!p) throw new Error(`sgd: no parameter ${name}`);
      if (p.length !== g.length) throw new Error(`sgd: gradient for ${name} has ${g.length} values, parameter ${p.length}`);
      const wd = this.opts.noDecay?.(name) ? 0 : this.wd;
      let buf = this.momentum.get(name);
      const first = buf === undefined;
      if (!buf && this.mu !== 0) {
        buf = new Float32Array(p.length);
        this.momentum.set(name, buf);
      }
      for (let i = 0; i < p.length; i++) {
        const d = Math.fround(g[i]! + wd * p[i]!);
        if (buf) {
          buf[i] = first ? d : Math.fround(this.mu * buf[i]! + d);
          p[i] = Math.fround(p[i]! - lr * buf[i]!);
        } else {
          p[i] = Math.fround(p[i]! - lr * d);
        }
      }
    }
  }
}
