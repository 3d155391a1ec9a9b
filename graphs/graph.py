"""The question-answering flow as a LangGraph ``StateGraph``.

    retrieve → summarize → synthesize → verify ─┬─(unsupported claims, revisions left)→ synthesize
                                                ├─(no claim supported, fallback "quote")→ quote → verify
                                                └─(otherwise)→ finalize → END

``summarize`` turns the retrieved sections into the writer's evidence (the encoder digest); with
``summarize.enabled = False`` it passes, and ``retrieve`` draws the evidence from its best passages.

The rewrite loop is bounded by ``VerifyConfig.max_revisions``; ``quote`` runs at most once.
"""

from __future__ import annotations

from langgraph.graph import END, START, StateGraph

from graphs.nodes import QANodes
from graphs.state import QAInput, QAState


def build_graph(nodes: QANodes):
    """Compiles the flow; ``graph.invoke({"question": ...})`` returns the final state as a dict."""
    g = StateGraph(QAState, input_schema=QAInput)
    g.add_node("retrieve", nodes.retrieve)
    g.add_node("summarize", nodes.summarize)
    g.add_node("synthesize", nodes.synthesize)
    g.add_node("verify", nodes.verify)
    g.add_node("quote", nodes.quote)
    g.add_node("finalize", nodes.finalize)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "summarize")
    g.add_edge("summarize", "synthesize")
    g.add_edge("synthesize", "verify")
    g.add_conditional_edges("verify", nodes.route_after_verify, ["synthesize", "quote", "finalize"])
    g.add_edge("quote", "verify")
    g.add_edge("finalize", END)
    return g.compile()
