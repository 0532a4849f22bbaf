"""``/chargers/{charger_id}/…`` commands: availability, unlock, reset, trigger, stop; the OCPP log.

Commands go to the charger through the OCPP server's :class:`strom_core.ports.ChargerCommands`;
a remote stop is a stop of the session on that connector, billed and refunded like any stop.
"""

from __future__ import annotations

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.ports.device_model import DeviceModelCommands, VariableSetting, VariablesResult
from strom_storage.agents import set_connector_enabled

__all__ = ["ChargerCommandsResource"]


class ChargerCommandsResource:
    """What an operator tells a charger to do, and what it said."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def set_availability(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/connectors/{connector_id}/availability``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        connector_id = ctx.connector(profile, call.path("connector_id"))
        enabled = call.body.enabled
        result = await ctx.station.commands.change_availability(
            profile.id, connector_id, operative=enabled
        )
        await set_connector_enabled(ctx.db, profile.id, connector_id, enabled=enabled)
        ctx.payments.forget_view()  # offers see it at once
        await ctx.show_in_status(profile.id, connector=(connector_id, enabled))
        call.audit_detail.update(
            connector=connector_id, enabled=enabled, charger=result.status.value
        )
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def unlock(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/unlock``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        connector_id = ctx.connector(profile, str(call.body.connector_id))
        result = await ctx.station.commands.unlock(profile.id, connector_id)
        call.audit_detail.update(connector=connector_id, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def reset(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/reset``."""
        profile = self.ctx.profile(call)
        result = await self.ctx.station.commands.reset(profile.id, hard=call.body.kind == "hard")
        call.audit_detail.update(kind=call.body.kind, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def trigger_status(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/trigger-status``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        connector_id = call.body.connector_id
        if connector_id is not None:
            ctx.connector(profile, str(connector_id))
        result = await ctx.station.commands.trigger_status(profile.id, connector_id)
        call.audit_detail.update(connector=connector_id, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def remote_stop(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/remote-stop``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        connector_id = ctx.connector(profile, str(call.body.connector_id))
        running = await ctx.running(profile.id)
        session_id = running.get((profile.id, connector_id))
        if session_id is None:
            raise ApiError(409, "conflict", f"no session is running on connector {connector_id}")
        await ctx.stop(session_id)
        call.audit_detail.update(connector=connector_id, session=session_id)
        return m.CommandAnswer(status="Accepted", detail="stopping", session_id=session_id)

    def _device_model(self, charger_id: str) -> DeviceModelCommands:
        """The 2.0.1 commands, for a charger whose latest connection spoke OCPP 2.0.1."""
        device_model = self.ctx.station.device_model()
        info = self.ctx.station.charger_info(charger_id)
        version = info.ocpp_version if info else None
        if device_model is None or version != "ocpp2.0.1":
            raise ApiError(
                409,
                "conflict",
                f"charger {charger_id} does not speak OCPP 2.0.1 ({version or 'never connected'})",
            )
        return device_model

    @staticmethod
    def _variables_answer(call: Call, answer: VariablesResult) -> m.VariablesAnswer:
        call.audit_detail.update(
            charger=answer.result.status.value,
            variables={f"{v.component}/{v.variable}": v.status for v in answer.variables},
        )
        return m.VariablesAnswer(
            status=answer.result.status.value,
            detail=answer.result.detail,
            variables=[
                m.VariableOut(
                    component=v.component, variable=v.variable, status=v.status, value=v.value
                )
                for v in answer.variables
            ],
        )

    async def get_variables(self, call: Call) -> m.VariablesAnswer:
        """``POST /chargers/{charger_id}/variables/get``: OCPP 2.0.1 GetVariables."""
        profile = self.ctx.profile(call)
        wanted = [VariableSetting(**v.model_dump()) for v in call.body.variables]
        answer = await self._device_model(profile.id).get_variables(profile.id, wanted)
        return self._variables_answer(call, answer)

    async def set_variables(self, call: Call) -> m.VariablesAnswer:
        """``POST /chargers/{charger_id}/variables/set``: OCPP 2.0.1 SetVariables."""
        profile = self.ctx.profile(call)
        settings = [VariableSetting(**v.model_dump()) for v in call.body.variables]
        answer = await self._device_model(profile.id).set_variables(profile.id, settings)
        return self._variables_answer(call, answer)

    async def get_base_report(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/get-base-report``: OCPP 2.0.1 GetBaseReport."""
        profile = self.ctx.profile(call)
        report = call.body.report
        result = await self._device_model(profile.id).get_base_report(profile.id, report)
        call.audit_detail.update(report=report, charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    async def ocpp_log(self, call: Call) -> m.OcppLog:
        """``GET /chargers/{charger_id}/ocpp-log``."""
        profile = self.ctx.profile(call)
        limit = call.query.limit
        frames = self.ctx.station.message_log(profile.id)[-limit:]
        return m.OcppLog(
            charger_id=profile.id,
            frames=[
                m.OcppFrame(at=f.at, direction=str(f.direction), frame=f.frame) for f in frames
            ],
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "POST",
                "/chargers/{charger_id}/connectors/{connector_id}/availability",
                self.set_availability,
                "Enable or disable a connector for new sessions",
                "chargers",
                m.CommandAnswer,
                body=m.Availability,
                action="connector.availability",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/unlock",
                self.unlock,
                "UnlockConnector",
                "chargers",
                m.CommandAnswer,
                body=m.UnlockIn,
                action="charger.unlock",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/reset",
                self.reset,
                "Reset (soft or hard)",
                "chargers",
                m.CommandAnswer,
                body=m.ResetIn,
                action="charger.reset",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/trigger-status",
                self.trigger_status,
                "TriggerMessage StatusNotification",
                "chargers",
                m.CommandAnswer,
                body=m.TriggerIn,
                action="charger.trigger_status",
                target="charger_id",
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/remote-stop",
                self.remote_stop,
                "Stop the session running on a connector (billed and refunded as usual)",
                "chargers",
                m.CommandAnswer,
                body=m.UnlockIn,
                action="charger.remote_stop",
                target="charger_id",
                conflict=True,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/variables/get",
                self.get_variables,
                "OCPP 2.0.1 GetVariables (component/variable, a status per variable)",
                "chargers",
                m.VariablesAnswer,
                body=m.GetVariablesIn,
                action="charger.get_variables",
                target="charger_id",
                conflict=True,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/variables/set",
                self.set_variables,
                "OCPP 2.0.1 SetVariables (component/variable, a status per variable)",
                "chargers",
                m.VariablesAnswer,
                body=m.SetVariablesIn,
                action="charger.set_variables",
                target="charger_id",
                conflict=True,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/get-base-report",
                self.get_base_report,
                "OCPP 2.0.1 GetBaseReport (the NotifyReport answers fill the charger's variables)",
                "chargers",
                m.CommandAnswer,
                body=m.BaseReportIn,
                action="charger.get_base_report",
                target="charger_id",
                conflict=True,
            ),
            e(
                "GET",
                "/chargers/{charger_id}/ocpp-log",
                self.ocpp_log,
                "The charger's recent OCPP frames",
                "chargers",
                m.OcppLog,
                query=m.LogQuery,
            ),
        ]
