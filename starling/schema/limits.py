"""Every operation passes here before it runs: parsed, held to the limits, validated.

``OperationLimits`` is the schema extension; ``Documents`` is one API process's cache of
parsed documents with what was found in them (Strawberry's ``ParserCache`` and
``ValidationCache`` in one, bounded in bytes as well as entries: ``starling.lru``).

The order is the cheap one: the token limit while parsing (graphql-core stops at the
limit), then the operation's depth and aliases (``schema.cost``, once per document), then
its cost with the request's variables (once per document and page sizes), and only then
graphql-core's validation rules (once per document). A refused operation reaches no
resolver, so it touches no datastore. Over HTTP and over WebSocket alike (subscriptions
are costed per event they deliver, like a query).

The accepted operation's cost is reported in ``extensions.cost``
(``{"requested", "maximum", "remaining"}``, README "Query cost") and kept on the execution
context: ``requested_cost`` reads it, and a rate limiter charging it against a budget
calls ``report_remaining`` so the response says what is left of that budget.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    parse,
    specified_rules,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext

from starling.config import Settings
from starling.lru import BoundedLRU
from starling.schema.cost import (
    Shape,
    fragments_of,
    is_int,
    operation_cost,
    operation_shape,
    sized_variables,
)

# graphql-core's AST with locations, measured with tracemalloc: 415-700 bytes per token.
DOCUMENT_BYTES_PER_TOKEN = 600
# Costs remembered per document, one per distinct set of page sizes its variables ask for.
COSTS_PER_DOCUMENT = 16
COST_EXTENSION = "cost"


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int
    max_aliases: int
    max_tokens: int
    max_cost: int
    page_size_max: int
    introspection: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLimits:
        return cls(
            max_depth=settings.query_max_depth,
            max_aliases=settings.query_max_aliases,
            max_tokens=settings.query_max_tokens,
            max_cost=settings.query_max_cost,
            page_size_max=settings.page_size_max,
            introspection=settings.introspection_enabled,
        )


def refusal(message: str, operation: OperationDefinitionNode | None = None) -> GraphQLError:
    return GraphQLError(message, nodes=operation, extensions={"code": "BAD_USER_INPUT"})


@dataclass
class CheckedDocument:
    """A parsed document and what has been found in it so far."""

    document: DocumentNode
    fragments: dict[str, FragmentDefinitionNode]
    sized_variables: tuple[str, ...]
    shapes: dict[str | None, Shape] = field(default_factory=dict)
    validation_errors: list[GraphQLError] | None = None
    costs: BoundedLRU[tuple[Any, ...], int] = field(
        default_factory=lambda: BoundedLRU(COSTS_PER_DOCUMENT, COSTS_PER_DOCUMENT, 1)
    )

    @classmethod
    def of(cls, document: DocumentNode) -> CheckedDocument:
        definitions = document.definitions
        return cls(document, fragments_of(definitions), sized_variables(definitions))

    def shape(self, operation: OperationDefinitionNode) -> Shape:
        name = operation.name.value if operation.name else None
        shape = self.shapes.get(name)
        if shape is None:
            shape = self.shapes[name] = operation_shape(operation, self.fragments)
        return shape

    def cost(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
        limits: QueryLimits,
    ) -> int:
        key = (
            operation.name.value if operation.name else None,
            *page_size_key(variables, self.sized_variables),
        )
        cost = self.costs.get(key)
        if cost is None:
            cost = operation_cost(schema, operation, self.fragments, variables, limits.page_size_max)
            self.costs.put(key, cost, 1)
        return cost


class Documents:
    """One API process's parsed documents, by query text (see ``starling.lru``)."""

    def __init__(self, limits: QueryLimits, max_entries: int, max_bytes: int, entry_max_bytes: int) -> None:
        self.limits = limits
        self._cache: BoundedLRU[str, CheckedDocument] = BoundedLRU(max_entries, max_bytes, entry_max_bytes)

    @classmethod
    def from_settings(cls, settings: Settings) -> Documents:
        return cls(
            QueryLimits.from_settings(settings),
            settings.query_cache_max_entries,
            settings.query_cache_max_bytes,
            settings.query_cache_entry_max_bytes,
        )

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def bytes(self) -> int:
        return self._cache.bytes

    def parse(self, query: str) -> CheckedDocument:
        """The document of ``query``; raises graphql-core's syntax error (over the token
        limit included), which is not cached."""
        checked = self._cache.get(query)
        if checked is None:
            document = parse(query, max_tokens=self.limits.max_tokens)
            checked = CheckedDocument.of(document)
            self._cache.put(query, checked, document_weight(query, document))
        return checked

    def errors(
        self,
        checked: CheckedDocument,
        schema: GraphQLSchema,
        operation_name: str | None,
        variables: Mapping[str, Any],
    ) -> tuple[list[GraphQLError], int | None]:
        """What stops the operation from running (nothing: ``[]``), and its cost once known."""
        limits = self.limits
        operation = get_operation_ast(checked.document, operation_name)
        if operation is None:  # strawberry refuses it before validation; nothing to cost
            return self.validation_errors(checked, schema), None
        shape = checked.shape(operation)
        if shape.depth > limits.max_depth:
            message = (
                f"The operation nests fields {shape.depth} deep; at most {limits.max_depth} are allowed."
            )
            return [refusal(message, operation)], None
        if shape.aliases > limits.max_aliases:
            message = (
                f"The operation has {shape.aliases:,} aliased fields (fragments expanded); "
                f"at most {limits.max_aliases:,} are allowed."
            )
            return [refusal(message, operation)], None
        cost = checked.cost(schema, operation, variables, limits)
        if cost > limits.max_cost:
            message = (
                f"The operation could return up to {cost:,} objects (its cost: page sizes multiplied "
                f"down the tree); at most {limits.max_cost:,} are allowed. Ask for smaller pages "
                "(`first`) or fewer nested connections."
            )
            return [refusal(message, operation)], cost
        return self.validation_errors(checked, schema), cost

    def validation_errors(self, checked: CheckedDocument, schema: GraphQLSchema) -> list[GraphQLError]:
        if checked.validation_errors is None:
            rules = VALIDATION_RULES if self.limits.introspection else VALIDATION_RULES_NO_INTROSPECTION
            checked.validation_errors = validate_document(schema, checked.document, rules)
        return checked.validation_errors


VALIDATION_RULES = tuple(specified_rules)
VALIDATION_RULES_NO_INTROSPECTION = (*VALIDATION_RULES, NoSchemaIntrospectionCustomRule)


_MISSING = "missing"


def page_size_key(variables: Mapping[str, Any], names: tuple[str, ...]) -> Iterator[Any]:
    """What the cost reads of each variable in ``names``: an integer, absent (the
    variable's default), or anything else (the argument's default)."""
    for name in names:
        value = variables.get(name, _MISSING)
        yield value if is_int(value) or value is _MISSING else None


def document_weight(query: str, document: DocumentNode) -> int:
    """Estimated bytes of a cached document: its text (the cache key) and its AST."""
    return len(query) + document.token_count * DOCUMENT_BYTES_PER_TOKEN


def cost_report(requested: int, maximum: int) -> dict[str, int]:
    return {"requested": requested, "maximum": maximum, "remaining": max(0, maximum - requested)}


def requested_cost(execution_context: ExecutionContext) -> int | None:
    """The cost of the operation being run, once it passed the limits (else None)."""
    report = execution_context.extensions_results.get(COST_EXTENSION)
    return report["requested"] if report else None


def report_remaining(execution_context: ExecutionContext, remaining: int) -> None:
    """Say in ``extensions.cost.remaining`` what is left of the budget the operation was
    charged against (a rate limiter's, per viewer and minute)."""
    report = execution_context.extensions_results.get(COST_EXTENSION)
    if report is not None:
        report["remaining"] = remaining


def placeholder(query: str, operation_name: str | None) -> DocumentNode:
    """``query <operation_name> { __typename }``: stands in for a document that did not parse,
    so that Strawberry goes on to validation, where the parse error is reported, instead of
    parsing the text again (a hostile document parses up to the token limit: twice would
    double what refusing it costs). Its operation type is the one the text starts with, so
    that the check of allowed operation types, which comes before validation (a WebSocket
    runs subscriptions only), lets the parse error through."""
    name = NameNode(value=operation_name) if operation_name is not None else None
    selections = SelectionSetNode(selections=(FieldNode(name=NameNode(value="__typename")),))
    keyword = _LEADING_KEYWORD.match(query)
    kind = OperationType(keyword.group(1)) if keyword else OperationType.QUERY
    return DocumentNode(
        definitions=(OperationDefinitionNode(operation=kind, name=name, selection_set=selections),)
    )


_LEADING_KEYWORD = re.compile(r"\s*(query|mutation|subscription)\b")


class OperationLimits(SchemaExtension):
    """Parse through ``Documents``, then refuse what is over a limit or invalid (module doc)."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self._checked: CheckedDocument | None = None
        self._parse_error: GraphQLError | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and context.graphql_document is None:
            try:
                self._checked = self.documents.parse(context.query)
                context.graphql_document = self._checked.document
            except GraphQLError as error:  # a syntax error, the token limit
                self._parse_error = error
                context.graphql_document = placeholder(context.query, context.operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self._parse_error is not None:
            context.pre_execution_errors = [self._parse_error]
        elif self._checked is not None and context.pre_execution_errors is None:
            schema = context.schema._schema
            variables = context.variables if isinstance(context.variables, Mapping) else {}
            errors, cost = self.documents.errors(self._checked, schema, context.operation_name, variables)
            if cost is not None:
                context.extensions_results[COST_EXTENSION] = cost_report(cost, self.documents.limits.max_cost)
            context.pre_execution_errors = errors
        yield
