"""``kakusan metric-net train|show|score``: the per-data-set classifiers behind the sample-quality metrics.

``train --data NAME`` trains data set NAME's metric net (:mod:`kakusan.evaluate.metric_net`) unless the cache
already holds a current one (``--rebuild`` trains it again), and prints its cache path, test accuracy and the
CPU time its training took; ``show`` lists the cached nets; ``score SAMPLES.npy --data NAME`` scores any
generator's samples (images in [0, 1]) as ``diffusion evaluate --fd`` does: FD with its s.e. (Gaussian resamples), precision
and recall, the real-data floor at the same size, and with ``--labels`` the class accuracy. The cache is ``$KAKUSAN_DATA/metric-nets`` (default
``~/.cache/kakusan/metric-nets``).
"""

from __future__ import annotations

import argparse
import time

from kakusan.files import dumps_strict


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("metric-net", help="the classifiers whose features score samples (FD, precision/"
                                                 "recall, class accuracy): train, show, score")
    sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=type(p))
    tr = sub.add_parser("train", help="train a data set's metric net into the cache (kept if already there)")
    tr.add_argument("--data", default="digits", help="digits, mnist or fashion-mnist")
    tr.add_argument("--rebuild", action="store_true", help="train again even if the cache holds a current net")
    tr.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    tr.add_argument("--json", action="store_true", help="print one JSON object")
    sh = sub.add_parser("show", help="list the cached metric nets with their test accuracy")
    sh.add_argument("--json", action="store_true", help="print one JSON object")
    sc = sub.add_parser("score", help="score samples from any generator: FD, precision/recall (and class accuracy "
                                      "with --labels) against a data set's real images")
    sc.add_argument("samples", metavar="SAMPLES", help="a .npy of images in [0, 1]: (n, H, W), (n, 1, H, W) or "
                                                      "(n, H·W)")
    sc.add_argument("--data", required=True, help="the data set they imitate: digits, mnist or fashion-mnist")
    sc.add_argument("--labels", default=None, metavar="FILE",
                    help="a .npy of the intended class of each sample (adds the class accuracy)")
    sc.add_argument("--reference", choices=("test", "train"), default="test",
                    help="the real images compared against (default test; the floor uses the other split)")
    sc.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run, metric_net_parser=p)


def run(args: argparse.Namespace) -> int:
    actions = {"train": run_train, "show": run_show, "score": run_score}
    if args.action not in actions:
        args.metric_net_parser.print_help()
        return 2
    return actions[args.action](args)


def run_train(args: argparse.Namespace) -> int:
    from kakusan.evaluate.metric_net import cache_path, get_metric_net
    from kakusan.runtime import set_threads

    set_threads()
    path = cache_path(args.data)  # an unknown name fails here, before anything is loaded
    wall = time.perf_counter()
    net = get_metric_net(args.data, args.device, rebuild=args.rebuild, progress=not args.json)
    meta = net.meta
    trained = not meta["from_cache"]
    result = {"data": meta["data"], "path": str(path), "trained": trained, "test_accuracy": meta["test_accuracy"],
              "n_test": meta.get("n_test"), "train_cpu_seconds": meta.get("cpu_seconds"),
              "train_seconds": meta.get("seconds"), "epochs": meta.get("recipe", {}).get("epochs"),
              "feature_dim": net.feature_dim, "seconds": time.perf_counter() - wall}
    if args.json:
        print(dumps_strict(result))
    else:
        how = "trained" if trained else "cached"
        print(f"{how} metric net for {result['data']}: test accuracy {100 * result['test_accuracy']:.2f} % on "
              f"{result['n_test']} images; training took {result['train_cpu_seconds']:.1f} CPU-s "
              f"({result['train_seconds']:.1f} s wall); {path}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from kakusan.evaluate.metric_net import cache_dir, cached_metric_nets

    nets = cached_metric_nets()
    if args.json:
        print(dumps_strict({"cache": str(cache_dir()), "nets": nets}))
        return 0
    if not nets:
        print(f"no metric nets in {cache_dir()}: `kakusan metric-net train --data NAME` builds one")
        return 0
    print(f"metric nets in {cache_dir()}:")
    for e in nets:
        if "error" in e:
            status = f"damaged ({e['error']}); the next use retrains it"
        else:
            status = (f"test accuracy {100 * e['test_accuracy']:.2f} %, {e.get('cpu_seconds', float('nan')):.0f} "
                      f"CPU-s to train, {e['bytes'] / 1e6:.1f} MB")
            if e.get("current") is False:
                status += f"; stale ({e.get('stale')}), the next use retrains it"
        print(f"  {e['data']:<14} {status}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    import numpy as np

    from kakusan.errors import DataError
    from kakusan.evaluate.metric_net import cache_path, evaluate_samples
    from kakusan.data.user_files import check_array, read_npy
    from kakusan.runtime import pick_device, set_threads

    set_threads()
    cache_path(args.data)  # an unknown name fails here, before anything is loaded
    samples = check_array(read_npy(args.samples), str(args.samples), what="the samples")
    labels = None
    if args.labels is not None:
        labels = read_npy(args.labels)
        if labels.ndim != 1 or len(labels) != len(samples) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"--labels {args.labels}: give one integer class per sample, shape ({len(samples)},); "
                            f"got {labels.dtype} {labels.shape}")
    cpu = time.process_time()
    result = evaluate_samples(args.data, samples, labels=labels, reference=args.reference,
                              device=pick_device(args.device), progress=not args.json)
    result.update(samples=str(args.samples), cpu_seconds=time.process_time() - cpu)
    if args.json:
        print(dumps_strict(result))
        return 0
    floor = result["floor"]
    line = (f"{result['n_samples']} samples against {result['n_reference']} {result['reference']} images of "
            f"{result['data']}: FD {result['fd']:.3g} ± {result['fd_stderr']:.2g} (one s.e.; real "
            f"{floor['split']} images: {floor['fd']:.3g}), precision {result['precision']:.3f}, recall "
            f"{result['recall']:.3f}")
    if "class_accuracy" in result:
        line += f", class accuracy {100 * result['class_accuracy']:.1f} ± {100 * result['class_accuracy_stderr']:.1f} %"
    print(line)
    return 0
