-- Argo CD health check for ferry.dev/MigrationPackage.
-- Reads the package's conditions (Ready, Reconciling, Stalled: kstatus
-- conventions). Written for Argo CD's Lua 5.1.
local hs = {}

local function condition(status, type)
  if status == nil or status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

-- A False Reconciling or Stalled only says what the object does instead.
local function describe(c, fallback)
  if c ~= nil and (c.status == "True" or c.type == "Ready") and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
local generation = obj.metadata ~= nil and obj.metadata.generation or nil

if status == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to fetch and verify the package"
  return hs
end

if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end

local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")

if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  local message = describe(stalled, describe(ready, "the package cannot be used"))
  if status.problems ~= nil and #status.problems > 1 then
    message = message .. " (" .. tostring(#status.problems) .. " problems; see status.problems)"
  end
  hs.message = message
  return hs
end

if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  local parts = {}
  if status.summary ~= nil and status.summary.totalObjects ~= nil then
    table.insert(parts, tostring(status.summary.totalObjects) .. " objects")
  end
  if status.artifact ~= nil and status.artifact.digest ~= nil then
    table.insert(parts, status.artifact.digest)
  end
  if #parts > 0 then
    hs.message = "Verified: " .. table.concat(parts, ", ")
  else
    hs.message = describe(ready, "Verified")
  end
  return hs
end

hs.status = "Progressing"
hs.message = describe(condition(status, "Reconciling"), describe(ready, "Fetching and verifying the package"))
return hs
