"""LangGraph's own documented patterns, written as its docs write them, for code-first workflows.

Each ``build_*`` returns what a user's module would: the quickstart graph with
a conditional edge, ``create_react_agent`` on a chat model, ``interrupt`` with
``Command(resume=...)`` compiled with its own ``InMemorySaver`` (as the docs
show), ``Send`` map-reduce, and a compiled subgraph added as a node. The tests
run each through the runtime (and the API) and compare with the graph invoked
directly. The chat model is langchain_core's own fake (no network), taught to
bind tools as ``create_react_agent`` asks.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

# ---- the quickstart: three nodes and a conditional edge -----------------------------------------


class MoodState(TypedDict):
    graph_state: str


def node_1(state: MoodState) -> MoodState:
    return {"graph_state": state["graph_state"] + " I am"}


def node_2(state: MoodState) -> MoodState:
    return {"graph_state": state["graph_state"] + " happy!"}


def node_3(state: MoodState) -> MoodState:
    return {"graph_state": state["graph_state"] + " sad!"}


def decide_mood(state: MoodState) -> Literal["node_2", "node_3"]:
    # the docs flip a coin; a test needs the same answer twice
    return "node_2" if "Lance" in state["graph_state"] else "node_3"


def build_quickstart() -> Any:
    builder = StateGraph(MoodState)
    builder.add_node("node_1", node_1)
    builder.add_node("node_2", node_2)
    builder.add_node("node_3", node_3)
    builder.add_edge(START, "node_1")
    builder.add_conditional_edges("node_1", decide_mood)
    builder.add_edge("node_2", END)
    builder.add_edge("node_3", END)
    return builder.compile()


# ---- create_react_agent on a chat model -----------------------------------------------------------


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two numbers."""
    return a * b


class ToolCallingFakeModel(GenericFakeChatModel):
    """langchain_core's fake chat model, which ``create_react_agent`` can bind tools to."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self


def react_script() -> list[AIMessage]:
    return [
        AIMessage(content="", tool_calls=[{"name": "multiply", "args": {"a": 3, "b": 5}, "id": "call_1"}]),
        AIMessage(content="The answer is 15."),
    ]


def build_react_agent() -> Any:
    from langgraph.prebuilt import create_react_agent

    model = ToolCallingFakeModel(messages=iter(react_script()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LangGraph 1.x points to langchain.agents.create_agent; the API stays
        return create_react_agent(model, tools=[multiply])


# ---- interrupt and Command(resume=...), compiled with its own checkpointer --------------------------


class ReviewState(TypedDict):
    some_text: str


def human_node(state: ReviewState) -> ReviewState:
    value = interrupt({"text_to_revise": state["some_text"]})
    return {"some_text": value}


def build_interrupt() -> Any:
    builder = StateGraph(ReviewState)
    builder.add_node("human_node", human_node)
    builder.add_edge(START, "human_node")
    builder.add_edge("human_node", END)
    return builder.compile(checkpointer=InMemorySaver())


# ---- Send: map-reduce -------------------------------------------------------------------------------


class OverallState(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]


class JokeState(TypedDict):
    subject: str


def continue_to_jokes(state: OverallState) -> list[Send]:
    return [Send("generate_joke", {"subject": s}) for s in state["subjects"]]


def generate_joke(state: JokeState) -> dict[str, list[str]]:
    return {"jokes": [f"Joke about {state['subject']}"]}


def build_map_reduce() -> Any:
    builder = StateGraph(OverallState)
    builder.add_node("generate_joke", generate_joke)
    builder.add_conditional_edges(START, continue_to_jokes, ["generate_joke"])
    builder.add_edge("generate_joke", END)
    return builder.compile()


# ---- a compiled subgraph as a node (a key shared with the parent) -------------------------------------


class SubgraphState(TypedDict):
    foo: str
    bar: str


def subgraph_node_1(state: SubgraphState) -> dict[str, str]:
    return {"bar": "bar"}


def subgraph_node_2(state: SubgraphState) -> dict[str, str]:
    return {"foo": state["foo"] + state["bar"]}


class ParentState(TypedDict):
    foo: str


def parent_node_1(state: ParentState) -> ParentState:
    return {"foo": "hi! " + state["foo"]}


def build_subgraph() -> Any:
    sub = StateGraph(SubgraphState)
    sub.add_node(subgraph_node_1)
    sub.add_node(subgraph_node_2)
    sub.add_edge(START, "subgraph_node_1")
    sub.add_edge("subgraph_node_1", "subgraph_node_2")
    builder = StateGraph(ParentState)
    builder.add_node("node_1", parent_node_1)
    builder.add_node("node_2", sub.compile())
    builder.add_edge(START, "node_1")
    builder.add_edge("node_1", "node_2")
    return builder.compile()


__all__ = ["Command"]
