-- Argo CD health check for partnerbilling.io/BillingGroup.
-- Healthy: Ready=True. Progressing: no status yet, an old observedGeneration, or a reason that
-- is waiting for something (creation, invitation, dependency, closure). Degraded: Ready=False
-- for any other reason (a terminal error: the message says what to fix).
local progressing = {
  Creating = true, CreationQueued = true, InvitationPending = true, DependencyNotReady = true,
  Closing = true, NotificationPending = true, PlannedOnly = true, Pending = true,
  PayerNotFound = true, TransferNotAccepted = true,
}
local hs = { status = "Progressing", message = "Waiting for the operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.status.observedGeneration ~= nil and obj.metadata.generation ~= nil
    and obj.status.observedGeneration < obj.metadata.generation then
  hs.message = "The operator has not seen the latest spec yet"
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.status == "Unknown" or progressing[c.reason] then
      hs.status = "Progressing"
    else
      hs.status = "Degraded"
    end
    hs.message = (c.reason or "") .. ": " .. (c.message or "")
    return hs
  end
end
return hs
