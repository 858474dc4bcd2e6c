-- Argo CD health check for partnerbilling.io/BillingTransfer.
-- Healthy: Ready=True (the transfer is ACCEPTED, or terminated as the spec asks). Progressing:
-- no status yet, an old observedGeneration, or a reason that waits for someone (the customer
-- has not answered the invitation, a dependency). Degraded: Ready=False for any other reason:
-- declined, expired, withdrawn or canceled (the message says how to send a new invitation), or
-- a terminal error (the message says what to fix).
local progressing = {
  TransferRequested = true, DependencyNotReady = true, PlannedOnly = true, Pending = true,
  PayerNotFound = true,
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
