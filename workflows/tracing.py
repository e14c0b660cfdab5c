"""Traces through Temporal: one trace per request, from the caller into the activities it causes.

The SDK's TracingInterceptor puts an update's or a signal's handler span on the *workflow's*
trace (the trace of whoever started it) with only a link to the caller, and the activities the
main loop runs go there too: a cancel call through the API would end in the create call's
trace. RequestTracingInterceptor parents the handler span on the caller's span instead, and the
workflow carries that context with the inbox item (``carry`` when queued, ``resumed`` while the
main loop handles it), so the activities a request causes, and their Stripe and database spans,
share the caller's trace. Neither changes a command: with tracing off both are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import opentelemetry.context
import opentelemetry.trace
from opentelemetry.context import Context
from temporalio.api.common.v1 import Payload
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.worker import HandleSignalInput, HandleUpdateInput, WorkflowInterceptorClassInput


def carry() -> Context:
    """The current trace context, to keep with a request until the main loop handles it."""
    return opentelemetry.context.get_current()


@contextmanager
def resumed(context: Context | None) -> Iterator[None]:
    """Run the block in a request's carried context (None: the current one)."""
    if context is None:
        yield
        return
    token = opentelemetry.context.attach(context)
    try:
        yield
    finally:
        # Only where it was attached: an evicted workflow's task is finalized elsewhere.
        if opentelemetry.context.get_current() is context:
            opentelemetry.context.detach(token)


class RequestTracingInterceptor(TracingInterceptor):
    """TracingInterceptor whose workflow side traces updates and signals per request."""

    def workflow_interceptor_class(
            self, input: WorkflowInterceptorClassInput) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)
        return _RequestTracingWorkflowInbound


class _RequestTracingWorkflowInbound(TracingWorkflowInboundInterceptor):
    def _caller(self, headers: Mapping[str, Payload]) -> Context | None:
        """The caller's context from the request headers; None when it sent none."""
        header = headers.get(self.header_key)
        if not header:
            return None
        carrier: dict[str, Any] = self.payload_converter.from_payloads([header])[0]
        context = self.text_map_propagator.extract(carrier) if carrier else None
        if context is None or not opentelemetry.trace.get_current_span(context) \
                .get_span_context().is_valid:
            return None
        return self._set_on_context(context)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        caller = self._caller(input.headers)
        if caller is None:
            return super().handle_update_validator(input)
        with resumed(caller):
            self._completed_span(f"ValidateUpdate:{input.update}",
                                 kind=opentelemetry.trace.SpanKind.SERVER)
            self.next.handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        caller = self._caller(input.headers)
        if caller is None:
            return await super().handle_update_handler(input)
        with resumed(caller):
            self._completed_span(f"HandleUpdate:{input.update}",
                                 kind=opentelemetry.trace.SpanKind.SERVER)
            return await self.next.handle_update_handler(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        caller = self._caller(input.headers)
        if caller is None:
            return await super().handle_signal(input)
        with resumed(caller):
            self._completed_span(f"HandleSignal:{input.signal}",
                                 kind=opentelemetry.trace.SpanKind.SERVER)
            await self.next.handle_signal(input)
