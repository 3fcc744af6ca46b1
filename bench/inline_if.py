#!/usr/bin/python3
"""Replace every top-level `If` of a model by one of its branches (the nodes inlined into the main graph, the
branch outputs renamed to the If's outputs), so that a model whose If condition is fixed in practice (the
VAD's `sr == 16000`, the merged decoder's `use_cache_branch`) can be benchmarked on a build without control
flow. Graph inputs and initializers that nothing reads any more (the condition's inputs, the other branch's
weights) are dropped, as are nodes whose outputs nothing reads.

usage: inline_if.py IN.onnx OUT.onnx --branch then|else
"""
import argparse

import onnx
from onnx import helper


def inline(model, branch):
    g = model.graph
    attr = "then_branch" if branch == "then" else "else_branch"
    nodes = []
    for n in g.node:
        if n.op_type != "If":
            nodes.append(n)
            continue
        sub = next(a.g for a in n.attribute if a.name == attr)
        rename = {o.name: n.output[i] for i, o in enumerate(sub.output)}
        for init in sub.initializer:
            g.initializer.append(init)
        for sn in sub.node:
            c = onnx.NodeProto()
            c.CopyFrom(sn)
            for i, name in enumerate(c.output):
                if name in rename:
                    c.output[i] = rename[name]
            nodes.append(c)
        # A branch output that is directly an outer value or an input of the branch: an Identity.
        produced = {o for sn in sub.node for o in sn.output}
        for o in sub.output:
            if o.name not in produced:
                nodes.append(helper.make_node("Identity", [o.name], [rename[o.name]]))
    # Drop dead nodes (those feeding only the removed conditions), then unread inputs.
    outputs = {o.name for o in g.output}
    while True:
        read = set(outputs)
        for n in nodes:
            read.update(n.input)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    read.update(x for sn in a.g.node for x in sn.input)
        keep = [n for n in nodes if any(o in read for o in n.output)]
        if len(keep) == len(nodes):
            break
        nodes = keep
    del g.node[:]
    g.node.extend(nodes)
    ins = [i for i in g.input if i.name in read]
    del g.input[:]
    g.input.extend(ins)
    inits = [t for t in g.initializer if t.name in read]
    del g.initializer[:]
    g.initializer.extend(inits)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--branch", choices=["then", "else"], required=True)
    a = ap.parse_args()
    m = inline(onnx.load(a.inp), a.branch)
    onnx.checker.check_model(m)
    onnx.save(m, a.out)
    print(f"{a.out}: {len(m.graph.node)} nodes, inputs {[i.name for i in m.graph.input]}")


if __name__ == "__main__":
    main()
