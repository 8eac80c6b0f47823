"""The training-step timing the PyTorch peers share: zero_grad, forward, loss, backward, step and
loss.item() on a pool of pre-made batches, `warmup` steps, then the median rate of `rounds`
rounds of `steps` steps."""
import statistics
import time


def median_rate(model, opt, loss_fn, pool, batch, warmup, rounds, steps, sync=lambda: None):
    """Returns (samples/s, the last loss). `sync` waits for queued device work (before and after
    each round: torch.cuda.synchronize on a GPU)."""
    k = 0
    last = 0.0

    def step():
        nonlocal k, last
        x, y = pool[k % len(pool)]
        k += 1
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        last = loss.item()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(rounds):
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates), last
