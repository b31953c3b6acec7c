"""CPU inference: convolutions rewritten as oneDNN's fused, weight-prepacked kernels.

PyTorch's eager convolution on the CPU reorders the weights into oneDNN's blocked layout on
every call and runs each ReLU and residual addition as a separate pass over memory. For the
HRNet's many narrow convolutions both costs are a large share of a forward pass. This module
traces a network with ``torch.fx`` and replaces each ``nn.Conv2d`` (BatchNorms already folded)
by ``mkldnn._convolution_pointwise`` on weights reordered once, absorbing the ReLU that follows
and the residual addition (plus its ReLU) where the graph allows it. These are the same kernels
TorchInductor emits for a frozen CPU graph, but used eagerly, so any input size runs without a
compilation step per shape (interactive crops change size with every object).

The arithmetic is the same (fp32, same accumulation order up to oneDNN's blocking); callers
check the result against the unmodified network (``device.optimize_model``).
"""

from __future__ import annotations

import operator


def available() -> bool:
    """oneDNN's pointwise-fused convolution ops exist in this torch build."""
    import torch

    try:
        return bool(torch.backends.mkldnn.is_available()) and hasattr(torch.ops.mkldnn, "_convolution_pointwise")
    except (AttributeError, RuntimeError):
        return False


def _activation(node, modules):
    """(attr, scalars) of oneDNN's post-op equivalent to ``node``, or None."""
    import torch
    from torch import nn

    if node.op == "call_module":
        module = modules.get(node.target)
        if isinstance(module, nn.ReLU):
            return "relu", []
        if isinstance(module, nn.LeakyReLU):
            return "leaky_relu", [float(module.negative_slope)]
        return None
    if node.op == "call_function" and node.target in (torch.relu, torch.nn.functional.relu, torch.relu_):
        return ("relu", []) if not node.kwargs and len(node.args) == 1 else None
    if node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1:
        return "relu", []
    return None


def _is_add(node) -> bool:
    """An out-of-place ``a + b`` (an in-place one mutates a tensor other nodes may still read)."""
    import torch

    if node.op == "call_function" and node.target in (operator.add, torch.add):
        return len(node.args) == 2 and not node.kwargs
    return node.op == "call_method" and node.target == "add" and len(node.args) == 2 and not node.kwargs


def _sole_user(node):
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def fuse_convolutions(module, example_inputs: tuple):
    """A ``torch.fx.GraphModule`` equivalent to ``module`` (eval mode, CPU, fp32) in which every
    Conv2d runs as a prepacked oneDNN kernel with its ReLU / residual add fused.

    ``example_inputs`` (CPU tensors) fix the sizes the weights are laid out for; other input
    sizes give the same results. Identity modules (folded BatchNorms) are dropped first.
    """
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    gm = fx.symbolic_trace(module)
    modules = dict(gm.named_modules())
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op == "call_module" and isinstance(modules.get(node.target), (nn.Identity, nn.Dropout2d, nn.Dropout)):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
    gm.recompile()
    ShapeProp(gm).propagate(*example_inputs)

    mk = torch.ops.mkldnn
    count = 0
    for node in list(graph.nodes):
        conv = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        source, out_meta = node.args[0], node.meta.get("tensor_meta")
        in_meta = source.meta.get("tensor_meta") if hasattr(source, "meta") else None
        if in_meta is None or out_meta is None:
            continue
        geometry = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        with torch.no_grad():
            packed = mk._reorder_convolution_weight(conv.weight.detach().contiguous(), *geometry, list(in_meta.shape))
        count += 1
        weight_name, bias_name = f"_onednn_w{count}", f"_onednn_b{count}"
        gm.register_buffer(weight_name, packed, persistent=False)
        if conv.bias is not None:
            gm.register_buffer(bias_name, conv.bias.detach().clone(), persistent=False)

        last, other, (unary, scalars) = node, None, ("none", [])
        user = _sole_user(node)
        act = _activation(user, modules) if user is not None else None
        if act is not None:
            last, (unary, scalars) = user, act
        elif user is not None and _is_add(user):
            a, b = user.args
            candidate = b if a is node else a
            same_shape = isinstance(candidate, fx.Node) and candidate is not node and \
                getattr(candidate.meta.get("tensor_meta"), "shape", None) == out_meta.shape
            if same_shape:
                last, other = user, candidate
                after = _sole_user(user)
                act = _activation(after, modules) if after is not None else None
                if act is not None:
                    last, (unary, scalars) = after, act

        with graph.inserting_before(last):
            w = graph.get_attr(weight_name)
            b = None if conv.bias is None else graph.get_attr(bias_name)
            if other is None:
                fused = graph.call_function(mk._convolution_pointwise.default,
                                            (node.args[0], w, b, *geometry, unary, scalars, ""))
            else:
                fused = graph.call_function(
                    mk._convolution_pointwise.binary,
                    (node.args[0], other, w, b, *geometry, "add", None,
                     None if unary == "none" else unary, scalars, ""))
        fused.meta.update(last.meta)
        last.replace_all_uses_with(fused)
        for dead in _chain(node, last):
            graph.erase_node(dead)
    graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.fused_convolutions = count
    return gm


def _chain(first, last):
    """Nodes from ``last`` back to ``first`` along sole users (erase order: consumers first)."""
    nodes = [first]
    while nodes[-1] is not last:
        nodes.append(_sole_user(nodes[-1]))
    return reversed(nodes)


def fuse_model(model, example_inputs: tuple):
    """``model`` (modified in place and returned) with ``fuse_convolutions`` applied to it, or,
    where its own forward cannot be traced (Python control flow on inputs), to each child
    module that holds convolutions, recursively. Returns (model, number of fused convolutions).
    """
    import torch
    from torch import fx, nn

    try:
        gm = fuse_convolutions(model, example_inputs)
        return gm, gm.fused_convolutions
    except (fx.proxy.TraceError, TypeError, NotImplementedError):
        pass
    seen = {}
    hooks = [child.register_forward_pre_hook(lambda m, args, name=name: seen.setdefault(name, args))
             for name, child in model.named_children()]
    try:
        with torch.no_grad():
            model(*example_inputs)
    finally:
        for h in hooks:
            h.remove()
    total = 0
    for name, child in list(model.named_children()):
        has_conv = any(isinstance(m, nn.Conv2d) for m in child.modules())
        if name in seen and has_conv and all(isinstance(a, torch.Tensor) for a in seen[name]):
            fused, n = fuse_model(child, seen[name])
            setattr(model, name, fused)
            total += n
    return model, total
