#include "metricsmodel.h"

namespace studio {

void MetricsModel::setOutput(std::shared_ptr<const RunOutput> out) {
    beginResetModel();
    m_rows.clear();
    if (out) {
        const auto& r = out->result;
        const auto& m = r.metrics;
        auto add = [&](const QString& n, QVariant v, const QString& h) {
            m_rows.push_back({n, std::move(v), h});
        };
        add("K", qlonglong(r.k), tr("merged tokens"));
        add("reconstruction_error", m.reconstructionError,
            tr("‖X − U(X̃)‖_F / ‖X‖_F; a dropped token reconstructs as zero"));
        add("mean_cosine", m.meanCosine,
            tr("mean cosine of each token to its merged vector; 0 for a dropped token"));
        add("reconstruction_error_nearest_kept", m.reconstructionErrorNearestKept,
            tr("the same with each dropped token as its most similar kept token (pruning's "
               "fair figure; equal when nothing is dropped)"));
        add("mean_cosine_nearest_kept", m.meanCosineNearestKept,
            tr("mean cosine with each dropped token as its most similar kept token"));
        add("norm_mass_top_k", m.normMassTopK,
            tr("γ_actual: share of the norm mass in the largest tokens"));
        add("norm_mass_retention", m.normMassRetention, tr("Σ|G_k|‖x̃_k‖ / Σ‖x_i‖"));
        add("fidelity_ok", m.fidelityOk ? tr("yes") : tr("no"), tr("norm_mass_retention ≥ γ"));
        add("saliency_retention", m.saliencyRetention, tr("saliency share of the hard foreground"));
        add("group_size min / median / max",
            QStringLiteral("%1 / %2 / %3")
                .arg(m.groupSizeMin)
                .arg(m.groupSizeMedian)
                .arg(m.groupSizeMax),
            {});
        add("loss ar (forward + backward)", r.losses.ar, tr("bidirectional AR-alignment loss"));
        add("loss fidelity", r.losses.fidelity, tr("the seed's fidelity loss (almost always 0)"));
        add("loss total", r.losses.total, tr("α·L_AR + L_fid"));
        const qmpp::MethodDiagnostics& d = out->diagnostics;
        if (d.hasMask) {
            add("pi max", d.piMax, tr("the largest Gumbel-softmax mask value"));
            add("pi effective tokens", d.piEffective,
                tr("1 / Σπ²: how many tokens share the mask"));
            add("mass at epsilon", d.massAtEpsilon,
                tr("share of tokens whose mass is within 1 % of ε"));
            add("noise-decided share of F", d.noiseDecided,
                tr("share of the hard foreground that changes with the Gumbel noise off"));
        }
        add("saliency vs position (Spearman)", d.positionRankCorrelation,
            tr("rank correlation of saliency with the token index"));
        add("refine rounds", r.refineRounds, {});
        add("backend", QString::fromStdString(r.backend + " · " + r.precision),
            QString::fromStdString(r.device));
        add("saliency source", QString::fromStdString(r.saliencySource), {});
        add("AR heads", QString::fromStdString(r.arHeadsSource), {});
        for (const auto& t : r.timings)
            add("time " + QString::fromStdString(t.stage) + " (ms)", t.ms, {});
    }
    endResetModel();
}

int MetricsModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : int(m_rows.size());
}
int MetricsModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : 2;
}

QVariant MetricsModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= int(m_rows.size())) return {};
    const Row& r = m_rows[index.row()];
    if (role == Qt::DisplayRole) {
        if (index.column() == 0) return r.name;
        if (r.value.typeId() == QMetaType::Double)
            return QString::number(r.value.toDouble(), 'g', 6);
        return r.value;
    }
    if (role == Qt::ToolTipRole) return r.help;
    if (role == Qt::TextAlignmentRole && index.column() == 1)
        return int(Qt::AlignRight | Qt::AlignVCenter);
    return {};
}

QVariant MetricsModel::headerData(int section, Qt::Orientation o, int role) const {
    if (o == Qt::Horizontal && role == Qt::DisplayRole)
        return section == 0 ? tr("metric") : tr("value");
    return {};
}

} // namespace studio
