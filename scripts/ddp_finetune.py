"""Fine-tune one medzoo model on one dataset with PyTorch DDP: the path for a large fine-tune that one GPU is too
slow for (the suites' cells are independent and scale out with `medzoo run --executor ray` instead).

    torchrun --nproc-per-node 4 scripts/ddp_finetune.py --model resnet50.tv_in1k --dataset pathmnist --size 224
    torchrun --nproc-per-node 2 scripts/ddp_finetune.py --model resnet18_28 --dataset synthetic_binary --cpu

Each process takes its shard of the training split (DistributedSampler), gradients are averaged by DDP (NCCL on
GPUs, gloo on CPU); rank 0 evaluates on the test split and saves the weights. Model, weights, preprocessing and
data come from medzoo; the protocol is deliberately minimal (AdamW at a fixed lr, no augmentation, no validation
selection, single-label datasets, 28 px files resized), so it is a starting point for a large fine-tune, not a
suite cell.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import zoo
from benchmarks.cells.prep import Resolution, to_input
from benchmarks.data import DATASETS, Split
from benchmarks.metrics import evaluate
from benchmarks.suites import Policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="NAME (random init) or NAME.TAG (pretrained)")
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--size", type=int, default=28, help="input size (28 px files are resized bicubic)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32, help="per process")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: no limit)")
    ap.add_argument("--data-dir")
    ap.add_argument("--out", help="where rank 0 saves the fine-tuned weights (safetensors)")
    ap.add_argument("--cpu", action="store_true", help="gloo on CPU instead of NCCL on GPUs")
    args = ap.parse_args()

    dist.init_process_group("gloo" if args.cpu else "nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cpu" if args.cpu else f"cuda:{int(os.environ['LOCAL_RANK'])}")
    torch.manual_seed(0)  # every rank starts from the same weights (DDP also broadcasts rank 0's)
    ds = DATASETS.get(args.dataset)
    pretrained = "." in args.model
    net = zoo.create_model(args.model, pretrained=pretrained, num_classes=ds.num_classes, in_chans=ds.n_channels)
    pre = zoo.preprocess_of(net) if pretrained else zoo.SCRATCH_PREPROCESS.for_channels(ds.n_channels)
    spec = zoo.get_spec(args.model.partition(".")[0])
    res = Resolution(28, Policy.RESIZE_BICUBIC, args.size, max(args.size, spec.min_size))
    x, y = ds.load(Split.TRAIN, 28, args.data_dir)
    data = TensorDataset(torch.from_numpy(x), torch.from_numpy(y.ravel()).long())
    sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=args.batch_size, sampler=sampler)
    model = DistributedDataParallel(net.to(device), device_ids=None if args.cpu else [device.index])
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        model.train()
        for step, (xb, yb) in enumerate(loader):
            if args.max_steps and step >= args.max_steps:
                break
            loss = loss_fn(model(to_input(xb, res, pre.mean, pre.std).to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()  # DDP averages the gradients across processes here
            opt.step()
        if rank == 0:
            print(f"epoch {epoch + 1}: last loss {loss.item():.4f}", flush=True)
    flat = torch.cat([q.detach().flatten().double().cpu() for q in model.parameters()])
    mine = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(len(flat))).sum()]).to(device)
    every = [torch.zeros_like(mine) for _ in range(world)]  # on the device: NCCL gathers CUDA tensors only
    dist.all_gather(every, mine)  # gloo and nccl both gather; equal checksums = the replicas stayed in sync
    if rank == 0:
        print(f"replicas identical: {all(torch.equal(every[0], e) for e in every)}", flush=True)
        xt, yt = ds.load(Split.TEST, 28, args.data_dir)
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model.module(to_input(torch.from_numpy(xt[i:i + 256]), res, pre.mean, pre.std)
                                             .to(device)).float().cpu() for i in range(0, len(xt), 256)])
        scores = logits.softmax(1).double().numpy()
        print(f"test AUC {evaluate(yt, scores, ds.task)['auc']:.4f} ({world} processes)", flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in model.module.state_dict().items()}, args.out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
