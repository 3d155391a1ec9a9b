"""The question-answering flow as a LangGraph ``StateGraph``.

    retrieve ─┬─(a typed question, [answers] typed)→ typed ─┬─(answered)→ verify
              │                                           └─(no answer of its type)→ summarize
              └─→ summarize → synthesize → verify ─┬─(unsupported claims, revisions left)→ synthesize
                                                          ├─(no claim supported, fallback "quote")→ quote → verify
                                                          └─(otherwise)→ finalize → END

``typed`` answers span, yes-no, list and date questions with the component right for each (``graphs/typed.py``).
``summarize`` turns the retrieved sections into the writer's evidence (the encoder digest); with
``summarize.enabled = False`` it passes, and ``retrieve`` draws the evidence from its best passages.

The rewrite loop is bounded by ``VerifyConfig.max_revisions``; ``quote`` runs at most once.

The graph holds no model or store: each run gets them as its context (``graphs.context.QAContext``), so
one compiled graph serves every question of a ``Pipeline``::

    graph = build_graph()
    out = graph.invoke({"question": q}, context=QAContext(store=..., retriever=..., embed=..., llm=None, config=cfg))
    out["answer"]                                    # an Answer; out["evidence"], out["claims"] beside it
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graphs import nodes
from graphs.context import QAContext
from graphs.state import QAInput, QAOutput, QAState

NODES = ("retrieve", "typed", "summarize", "synthesize", "verify", "quote", "finalize")


def build_graph(checkpointer=None):
    """Compiles the flow. With a ``checkpointer`` (e.g. LangGraph's ``SqliteSaver``) every node's update is
    saved under the run's ``thread_id``, so a run that was interrupted can be resumed from its last node."""
    g = StateGraph(QAState, context_schema=QAContext, input_schema=QAInput, output_schema=QAOutput)
    for name in NODES:
        g.add_node(name, getattr(nodes, name))
    g.add_edge(START, "retrieve")
    g.add_conditional_edges("retrieve", nodes.route_after_retrieve, ["typed", "summarize"])
    g.add_conditional_edges("typed", nodes.route_after_typed, ["verify", "summarize"])
    g.add_edge("summarize", "synthesize")
    g.add_edge("synthesize", "verify")
    g.add_conditional_edges("verify", nodes.route_after_verify, ["synthesize", "quote", "finalize"])
    g.add_edge("quote", "verify")
    g.add_edge("finalize", END)
    return g.compile(checkpointer=checkpointer)
